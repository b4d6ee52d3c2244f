"""Error classes. Their class names are what Step Functions Retry/Catch match on (Lambda's errorType)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def conditional_check_failed(err: Any) -> bool:
    """A DynamoDB ClientError saying a write's condition did not hold (the outcome a conditional write expects)."""
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def put_if_absent(table: Any, item: dict[str, Any], key: str) -> bool:
    """Put `item` unless an item with its `key` exists already: True when written, False when one was there. Any
    other error is raised."""
    try:
        table.put_item(Item=item, ConditionExpression=f"attribute_not_exists({key})")
    except ClientError as err:
        if not conditional_check_failed(err):
            raise
        return False
    return True


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


class BorrowerRecordInvalid(BorrowerNotFound):
    """The borrower's row does not fit the data contract (a phone stored as a number, say): as unusable as a missing
    one. Its message names the fields and the kind of error only; pydantic's own quotes the values (personal data),
    and this message reaches execution histories and logs."""

    reason = "borrower_record_invalid"


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


class ProviderThrottled(LoanNotifyError):
    """The provider refused for rate: nothing was sent. A wait, never a failure: no failover, no next channel,
    and the state machine retries it on its own budget (not the transient-failure one)."""

    reason = "throttled"


class SendOutcomeUnknown(LoanNotifyError):
    """The provider may have accepted the message (a timeout after the request went out, or a step interrupted
    between "about to send" and its record). Never retried blindly: the notice goes to a person."""

    reason = "send_outcome_unknown"


class NoticeAlreadySettled(LoanNotifyError):
    """The notice reached a final state meanwhile (a late receipt delivered it, a reviewer closed it): no send."""

    reason = "already_settled"


class AttemptRaced(LoanNotifyError):
    """Another copy of this send (a queue delivers at least once) began or recorded an attempt after this copy read
    the notice: nothing was sent; read the notice again (it may have the result to replay)."""

    reason = "send_raced"


class PaceWait(LoanNotifyError):
    """No send token for this provider yet: put the send back for `seconds` (nothing was attempted)."""

    reason = "paced"

    def __init__(self, seconds: float, provider: str) -> None:
        super().__init__(f"{provider}: next send token in {seconds:.3f}s")
        self.seconds = seconds
        self.provider = provider


class SendWindowClosed(LoanNotifyError):
    """The notice's legal send window (collection hours) shut while it waited in the outbox: it waits for the
    next window (the state machine prepares it again), never goes out late."""

    reason = "send_window_closed"


def fault_fields(err: Any) -> list[dict[str, str]]:
    """A pydantic ValidationError as what may be said of it: each field and the kind of error, never the values
    (pydantic's own message quotes them, personal data included)."""
    return [{"field": ".".join(str(p) for p in e["loc"]), "type": e["type"]}
            for e in err.errors(include_url=False, include_input=False)]


def record_fault(err: Exception) -> str | list[dict[str, str]]:
    """What may be logged of a stored record that did not fit its model (BorrowerRecordInvalid, or pydantic's
    ValidationError)."""
    return str(err) if isinstance(err, BorrowerRecordInvalid) else fault_fields(err)  # the former names fields only
