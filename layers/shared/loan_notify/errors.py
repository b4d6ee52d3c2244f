"""Error classes. Their class names are what Step Functions Retry/Catch match on (Lambda's errorType)."""

from __future__ import annotations


class LoanNotifyError(Exception):
    """Base class; `reason` is a stable machine-readable code recorded in the ledger."""

    reason = "error"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class InvalidStatusChange(LoanNotifyError):
    """A stream record that cannot become a notification (bad shape, unknown status...)."""

    reason = "invalid_record"


class BorrowerNotFound(LoanNotifyError):
    reason = "borrower_not_found"


class NoticeNotFound(LoanNotifyError):
    reason = "notice_not_found"


class PermanentChannelError(LoanNotifyError):
    """Retrying this channel cannot help (invalid or opted-out contact, channel not configured)."""

    reason = "permanent"


class TransientChannelError(LoanNotifyError):
    """Throttling, provider 5xx or timeout: retry with backoff."""

    reason = "transient"


class NoticeSuperseded(LoanNotifyError):
    """A newer status of the same loan made this still-pending notice moot (recorded in the ledger)."""

    reason = "superseded"
