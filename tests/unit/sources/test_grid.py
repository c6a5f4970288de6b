"""Answers side by side (sources.grid): points concatenated, keyed, scattered into matrices.

Grid of 3 entities × 4 steps, start T, r = 60 (columns k = (t − T) / 60). Expected matrices are
written out cell by cell below each case.
"""

from __future__ import annotations

import numpy as np

from kubetally.sources.grid import Grid, Keyed, Points
from kubetally.sources.results import RangeSeries

T = 1748736000
NAN = float("nan")


def series(labels: dict[str, str], points: dict[int, float]) -> RangeSeries:
    """`points` maps a step k to the value at T + 60·k."""
    return RangeSeries(labels=labels, timestamps=np.array([T + 60 * k for k in points], dtype=np.int64),
                       values=np.array(list(points.values()), dtype=np.float64))


def test_points_are_concatenated_with_offsets_and_taken_per_series() -> None:
    points = Points([series({}, {0: 1, 1: 2}), series({}, {}), series({}, {3: 7})])
    assert points.offsets.tolist() == [0, 2, 2, 3]
    assert points.values.tolist() == [1, 2, 7]
    assert points.any(points.values > 1.5).tolist() == [True, False, True]
    assert points.take(np.array([2, 0, 1, 0])).tolist() == [2, 0, 1, 0, 1]


def test_keyed_answers_join_their_series_and_keys() -> None:
    first = Keyed.of([series({"pod": "a", "job": "ksm-1"}, {0: 1}), series({"node": "x"}, {1: 2})], ("pod",))
    second = Keyed.of([series({"pod": "a"}, {2: 3})], ("pod",))
    joined = Keyed.joined([first, second])
    assert joined.keys == [("a",), ("",), ("a",)]
    assert joined.points.offsets.tolist() == [0, 1, 2, 3]
    assert joined.points.timestamps.tolist() == [T, T + 60, T + 120]
    assert joined.seen(joined.points.values > 1.5) == {("",), ("a",)}
    empty = Keyed.joined([])
    assert (empty.keys, empty.points.offsets.tolist()) == ([], [0])


def test_duplicates_keep_the_max_and_a_nan_loses_to_a_number() -> None:
    """Two exporters of pod a (another job label) and chunks of pod b:
        a  job 1: k0 1,   k1 NaN, k2 5
        a  job 2: k0 3,   k1 2,           k3 NaN
        b  chunk 1: k0 4, k1 4;  chunk 2: k2 6
        c  (no row in the grid: left out)
    → rows a: [3, 2, 5, NaN], b: [4, 4, 6, NaN], z (nothing seen): all NaN."""
    answer = Keyed.joined([
        Keyed.of([series({"pod": "a", "job": "1"}, {0: 1, 1: NAN, 2: 5}),
                  series({"pod": "a", "job": "2"}, {0: 3, 1: 2, 3: NAN}),
                  series({"pod": "b"}, {0: 4, 1: 4}),
                  series({"pod": "c"}, {0: 9})], ("pod",)),
        Keyed.of([series({"pod": "b"}, {2: 6})], ("pod",)),
    ])
    grid = Grid(T, 60, 4, [("a",), ("b",), ("z",)])
    got = grid.matrix(answer)
    expected = np.array([[3, 2, 5, NAN], [4, 4, 6, NAN], [NAN] * 4])
    np.testing.assert_array_equal(got, expected)


def test_a_resolved_key_lands_on_every_row_it_stands_for() -> None:
    """cAdvisor-like: key ("w",) stands for rows a and b, ("q",) for none.
        w: k1 2, k2 8  → a: [NaN, 2, 8, NaN], b: the same; q is left out."""
    answer = Keyed.of([series({"id": "w"}, {1: 2, 2: 8}), series({"id": "q"}, {0: 1})], ("id",))
    grid = Grid(T, 60, 4, [("a",), ("b",)])
    got = grid.matrix(answer, {("w",): [("a",), ("b",)], ("q",): []})
    np.testing.assert_array_equal(got, np.array([[NAN, 2, 8, NAN], [NAN, 2, 8, NAN]]))


def test_an_answer_with_no_row_gives_an_all_nan_matrix() -> None:
    grid = Grid(T, 60, 2, [("a",)])
    np.testing.assert_array_equal(grid.matrix(Keyed.of([], ("pod",))), np.array([[NAN, NAN]]))
    np.testing.assert_array_equal(grid.matrix(Keyed.of([series({"pod": "x"}, {0: 1})], ("pod",))),
                                  np.array([[NAN, NAN]]))


def test_resolved_keys_of_one_row_each_and_unknown_keys() -> None:
    """w stands for a; q for an entity without a row; x is not in `resolve`: only w lands.
        w: k0 5, k3 6 → a: [5, NaN, NaN, 6]; b: all NaN."""
    answer = Keyed.of([series({"id": "w"}, {0: 5, 3: 6}), series({"id": "q"}, {1: 1}), series({"id": "x"}, {2: 1})],
                      ("id",))
    grid = Grid(T, 60, 4, [("a",), ("b",)])
    got = grid.matrix(answer, {("w",): [("a",)], ("q",): [("zz",)]})
    np.testing.assert_array_equal(got, np.array([[5, NAN, NAN, 6], [NAN] * 4]))
