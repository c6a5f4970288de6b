"""What can go wrong with a ledger file that a user can cause or fix, as one-line messages.

Every such failure is a `LedgerError` whose text names the file and the next step, and whose
`exit_code` is what the command line exits with (README "Ledger: integrity, backups, restore"):

    1  LedgerDamaged       a block fails its checksum, the file is cut short, the bookkeeping disagrees
    3  LedgerLocked        another process holds the file (DuckDB allows one writing process)
    4  NotALedger          not a DuckDB file, or a DuckDB file without kubetally's `ledger_meta`
    5  NewerLedger         written by a newer kubetally (schema_version above ours, or a newer DuckDB format)
    6  LedgerNoSpace       ENOSPC while writing or checkpointing
    7  LedgerReadOnly      EROFS or a permission refusal on the file or its directory

2 stays what it is for every other command-line error (bad flags, bad input). `reason` is the
CostReport and CostBudget condition reason the operator writes when the ledger cannot answer.

`LedgerDamaged` is also a `SourceUnavailable`: whatever already turns an unreachable store into a
failed report status (and a 503 Status) turns a damaged ledger into one too, never into numbers.
"""

from __future__ import annotations

from kubetally.domain.errors import KubetallyError, SourceUnavailable


class LedgerError(KubetallyError):
    """A ledger failure a user can act on: `str(error)` is one line naming the file and the next step."""

    exit_code = 2
    reason = "LedgerUnavailable"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


class LedgerDamaged(LedgerError, SourceUnavailable):
    exit_code = 1
    reason = "LedgerDamaged"


class LedgerLocked(LedgerError):
    exit_code = 3

    def __init__(self, path: str, message: str, pid: int | None = None) -> None:
        super().__init__(path, message)
        self.pid = pid


class NotALedger(LedgerError):
    exit_code = 4


class NewerLedger(LedgerError):
    exit_code = 5


class LedgerNoSpace(LedgerError):
    exit_code = 6


class LedgerReadOnly(LedgerError):
    exit_code = 7
