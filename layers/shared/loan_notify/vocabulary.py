"""The one place for the lists the whole system agrees on: loan statuses, channels, locales."""

from __future__ import annotations

from enum import StrEnum


class LoanStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    PRELIMINARY_APPROVED = "PRELIMINARY_APPROVED"
    DOCUMENTS_REQUIRED = "DOCUMENTS_REQUIRED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    DISBURSED = "DISBURSED"
    REPAYMENT_DUE = "REPAYMENT_DUE"
    OVERDUE = "OVERDUE"
    SETTLED = "SETTLED"
    WITHDRAWN = "WITHDRAWN"


class Channel(StrEnum):
    SMS = "SMS"
    EMAIL = "EMAIL"
    PUSH = "PUSH"  # mobile push through an SNS platform endpoint the app registered
    INBOX = "INBOX"  # the in-app message center (a DynamoDB inbox the app reads)


class Locale(StrEnum):
    ZH_CN = "zh-CN"
    EN_US = "en-US"


class NoticeState(StrEnum):
    """Where a notification stands in the ledger."""

    STARTED = "STARTED"  # the router started its execution
    SENT = "SENT"  # a provider accepted the message
    SENT_UNCONFIRMED = "SENT_UNCONFIRMED"  # accepted by a provider that can send no receipt (non-critical only)
    DELIVERED = "DELIVERED"  # a receipt (or the app) confirmed the borrower has it
    UNDELIVERED = "UNDELIVERED"  # every allowed channel failed and no review case could be opened
    NEEDS_REVIEW = "NEEDS_REVIEW"  # every allowed channel failed: an open review case, owned by a person
    DELIVERED_BY_PERSON = "DELIVERED_BY_PERSON"  # a reviewer reached the borrower (phone, branch visit)
    CLOSED = "CLOSED"  # a reviewer closed the case with a reason
    REJECTED = "REJECTED"  # the status change itself was invalid: recorded with its reason, never sent
    SUPERSEDED = "SUPERSEDED"  # a newer status of the same loan made this pending notice moot
    OPTED_OUT = "OPTED_OUT"  # the borrower opted out of non-critical notices: not sent, on purpose


# States a notice never leaves: no later write (a retry, a late receipt, a review) may overwrite them.
FINAL_STATES = frozenset({NoticeState.DELIVERED, NoticeState.DELIVERED_BY_PERSON, NoticeState.CLOSED,
                          NoticeState.REJECTED, NoticeState.SUPERSEDED, NoticeState.OPTED_OUT})


class AttemptResult(StrEnum):
    SENT = "SENT"
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"  # the provider may or may not have accepted it (a timeout after the request)
    FAILED_PERMANENT = "FAILED_PERMANENT"
    FAILED_TRANSIENT = "FAILED_TRANSIENT"
    SKIPPED = "SKIPPED"


class DeliveryStatus(StrEnum):
    """One forward-only status per sent message, fed by provider receipts and app read acknowledgements."""

    SENT = "SENT"  # accepted by the provider, nothing heard since
    DELAYED = "DELAYED"  # the provider is still trying (SES DeliveryDelay)
    UNKNOWN = "UNKNOWN"  # the carrier never said (SMS receipts stop after 72 h)
    FAILED = "FAILED"  # the provider or carrier gave up (SMS failure, SES Reject)
    BOUNCED = "BOUNCED"  # the address does not exist or refused the mail
    DELIVERED = "DELIVERED"  # the handset or mailbox accepted it
    READ = "READ"  # the borrower opened it in the app
    COMPLAINED = "COMPLAINED"  # delivered, then marked as spam

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def confirms(self) -> bool:
        """Counts as the borrower having the notice."""
        return self in (DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.COMPLAINED)

    @property
    def fails(self) -> bool:
        return self in (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)


_RANK = {
    DeliveryStatus.SENT: 0,
    DeliveryStatus.DELAYED: 1,
    DeliveryStatus.UNKNOWN: 2,
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.BOUNCED: 3,
    DeliveryStatus.DELIVERED: 4,
    DeliveryStatus.READ: 5,
    DeliveryStatus.COMPLAINED: 6,
}
