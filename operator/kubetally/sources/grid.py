"""Answers side by side: the points of many series in one array, keyed by entity, scattered into matrices.

The collector reads ~100k series per L hour. Whatever it does per point is done here in numpy
over all series of an answer at once (one concatenation, then vectorised indexing); per series
there is only the Python work of reading its key from its labels.

- `Points`: the points of a list of series, concatenated; series i holds points
  offsets[i]:offsets[i+1].
- `Keyed`: an answer reduced to one identity key per series (a tuple of label values) and its
  `Points`. The label dicts can go as soon as an answer is keyed, which keeps an hour's answers
  small while the others arrive. Several series may share a key (duplicate exporters, the chunks
  of one series): they land on the same matrix row.
- `Grid`: entity keys → rows, evaluation times t_k = start + k·r → columns k = (t − start) // r;
  `matrix` scatters a Keyed answer into a (rows × n) matrix, NaN where nothing was seen, keeping
  the max where several series meet in one cell (`np.fmax`: a NaN loses to a number), which is
  what PromQL's `max by (<key>)` gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import numpy.typing as npt

from kubetally.sources.results import RangeSeries

Key = tuple[str, ...]
Matrix = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]
Int64s = npt.NDArray[np.int64]


class Points:
    """The points of `series` side by side (one concatenation of their arrays)."""

    def __init__(self, series: Sequence[RangeSeries]) -> None:
        lengths = np.fromiter((len(s.values) for s in series), dtype=np.int64, count=len(series))
        self.offsets: Int64s = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.timestamps: Int64s = (
            np.concatenate([s.timestamps for s in series]) if series else np.zeros(0, dtype=np.int64)
        )
        self.values: Matrix = np.concatenate([s.values for s in series]) if series else np.zeros(0)

    @classmethod
    def joined(cls, parts: Sequence[Points]) -> Points:
        """The series of `parts`, one after the other."""
        out = cls(())
        if parts:
            sizes = np.cumsum([0] + [len(p.values) for p in parts[:-1]])
            out.offsets = np.concatenate([[0]] + [p.offsets[1:] + size for p, size in zip(parts, sizes, strict=True)])
            out.timestamps = np.concatenate([p.timestamps for p in parts])
            out.values = np.concatenate([p.values for p in parts])
        return out

    def any(self, mask: Flags) -> Flags:
        """Per series, whether `mask` (one flag per point) holds at any of its points."""
        seen = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
        return np.asarray(seen[self.offsets[1:]] > seen[self.offsets[:-1]], dtype=np.bool_)

    def take(self, chosen: Int64s) -> Int64s:
        """The indices of the points of series chosen[0], then chosen[1], … (repeats allowed)."""
        lengths = self.offsets[chosen + 1] - self.offsets[chosen]
        ends = np.cumsum(lengths)
        shift = np.repeat(self.offsets[chosen] - (ends - lengths), lengths)
        return np.asarray(np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) + shift, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Keyed:
    """An answer as one key per series (the values of the labels `names`, "" where absent) and its points."""

    keys: list[Key]
    points: Points

    @classmethod
    def of(cls, series: Sequence[RangeSeries], names: Sequence[str]) -> Keyed:
        blanks = ("",) * len(names)
        return cls(keys=[tuple(map(s.labels.get, names, blanks)) for s in series], points=Points(series))

    @classmethod
    def joined(cls, parts: Sequence[Keyed]) -> Keyed:
        return cls(keys=[key for part in parts for key in part.keys], points=Points.joined([p.points for p in parts]))

    def seen(self, mask: Flags) -> set[Key]:
        """The keys of the series where `mask` (one flag per point) holds at some point."""
        return {key for key, yes in zip(self.keys, self.points.any(mask).tolist(), strict=True) if yes}


class Grid:
    """Maps entity keys to matrix rows and evaluation times to columns."""

    def __init__(self, start: int, r: int, n: int, keys: Iterable[Key]) -> None:
        self.start, self.r, self.n = start, r, n
        self.keys = list(keys)
        self.index = {key: row for row, key in enumerate(self.keys)}

    def matrix(self, answer: Keyed, resolve: Mapping[Key, Sequence[Key]] | None = None) -> Matrix:
        """Scatter `answer` into a (keys × n) matrix, keeping the max of series that meet in a cell.

        A series lands on the row of its key, or with `resolve` on the rows of the entity keys its
        key stands for (none: left out); a key without a row is left out."""
        rows_of = {key: found for key, entities in (resolve or {}).items()
                   if (found := [row for entity in entities if (row := self.index.get(entity)) is not None])}
        out = np.full((len(self.keys), self.n), np.nan)
        rows: Int64s
        if all(len(found) == 1 for found in rows_of.values()):  # one row per series at most: no pairs to build
            index = {key: found[0] for key, found in rows_of.items()} if resolve is not None else self.index
            rows = np.array(list(map(index.get, answer.keys, repeat(-1))), dtype=np.int64)
            chosen = np.flatnonzero(rows >= 0)
            rows = rows[chosen]
        else:
            pairs = [(i, row) for i, key in enumerate(answer.keys) for row in rows_of.get(key, ())]
            chosen, rows = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
        if not len(chosen):
            return out
        points = answer.points
        taken = points.take(chosen)
        cols = (points.timestamps[taken] - self.start) // self.r
        cells = np.repeat(rows, points.offsets[chosen + 1] - points.offsets[chosen]) * self.n + cols
        np.fmax.at(out.reshape(-1), cells, points.values[taken])
        return out
