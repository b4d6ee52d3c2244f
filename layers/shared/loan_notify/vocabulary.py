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


class Locale(StrEnum):
    ZH_CN = "zh-CN"
    EN_US = "en-US"


class NoticeState(StrEnum):
    """Where a notification stands in the ledger."""

    STARTED = "STARTED"  # the router started its execution
    SENT = "SENT"  # a provider accepted the message
    UNDELIVERED = "UNDELIVERED"  # every allowed channel failed: a person must follow up
    REJECTED = "REJECTED"  # the status change itself was invalid: recorded with its reason, never sent


class AttemptResult(StrEnum):
    SENT = "SENT"
    FAILED_PERMANENT = "FAILED_PERMANENT"
    FAILED_TRANSIENT = "FAILED_TRANSIENT"
    SKIPPED = "SKIPPED"
