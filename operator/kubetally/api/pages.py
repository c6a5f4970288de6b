"""Pages of the Alauda usage endpoints: which rows of an answer one response carries.

Why here and not in the engine: a page is how the HTTP API hands an answer out (Alauda's
`currentPage` / `pageSize`), not part of the answer; the engine returns every row and CostReports
never page. `api.params` reads the two parameters (and refuses a size over `MAX_PAGE_SIZE`),
`paginate` cuts the rows:

    total = number of rows;   page p of size s = rows[(p − 1)·s : p·s]   (p ≥ 1, 1 ≤ s ≤ 1000)

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from kubetally.domain.errors import SpecError

__all__ = ["MAX_PAGE_SIZE", "paginate"]

#: The largest page the Alauda endpoints hand out; larger requests get a 400 that names this cap.
MAX_PAGE_SIZE = 1000

_Row = TypeVar("_Row")


def paginate(rows: Sequence[_Row], current_page: int = 1, page_size: int = 20) -> tuple[int, Sequence[_Row]]:
    """(total, the rows of page `current_page`), pages counted from 1 (the Alauda defaults: 1, 20).

    A page past the end is empty, as in Alauda; a page number below 1 or a size outside
    1..MAX_PAGE_SIZE is a SpecError naming the accepted range.
    """
    if current_page < 1:
        raise SpecError("currentPage", f"{current_page} is not a page; pages start at 1, e.g. currentPage=1")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise SpecError("pageSize", f"{page_size} is outside 1..{MAX_PAGE_SIZE}; e.g. pageSize=20")
    first = (current_page - 1) * page_size
    return len(rows), rows[first : first + page_size]
