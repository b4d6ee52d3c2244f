"""The data contract, enforced with pydantic. Field names match the DynamoDB attributes the platform writes."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, time, timezone
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loan_notify.vocabulary import Channel, LoanStatus, Locale

_SLUG = re.compile(r"[^A-Za-z0-9_-]+")

# The longest values the contract allows: every SMS template must fit its segment budget with them (make templates),
# and an SMS carries the loan id and the amount whole. Loan ids are GSM-7 characters (each counts one in any SMS).
LOAN_ID_MAX_CHARS = 40
AMOUNT_MAX = Decimal("999999999999.99")  # 12 digits before the decimal point
NAME_MAX_CHARS = 64  # a longer name is stored and used in email, and shortened in SMS like any other
# Identifier patterns at the API boundary: no spaces, quotes, shell or control characters can reach an ops text.
LOAN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,39}$"
NOTIFICATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,200}$"  # what `notification_id` makes (a slug, a status, a digest)
CASE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,250}$"  # "<notification id>-case<N>" or "report-<loan slug>-<digest>-<N>"


class LoanImage(BaseModel):
    """One item of the Loans table (the NewImage of a stream record)."""

    model_config = ConfigDict(defer_build=True, extra="ignore", use_enum_values=False)

    loan_id: str = Field(min_length=1, max_length=LOAN_ID_MAX_CHARS, pattern=LOAN_ID_PATTERN)
    borrower_id: str = Field(min_length=1, max_length=128)
    status: LoanStatus
    status_reason: str | None = Field(default=None, max_length=500)
    amount: Decimal | None = Field(default=None, ge=0, le=AMOUNT_MAX)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    updated_at: datetime
    version: int = Field(ge=0)

    @field_validator("updated_at")
    @classmethod
    def _must_be_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() != timezone.utc.utcoffset(None):
            raise ValueError("updated_at must be ISO 8601 in UTC (suffix Z or +00:00)")
        return value

    @property
    def notification_id(self) -> str:
        return notification_id(self.loan_id, self.status.value, self.version)


def notification_id(loan_id: str, status: str, version: int) -> str:
    """Deterministic id of the notice owed for (loan, status, version).

    Readable in the Step Functions console, made of [A-Za-z0-9-_]; the hash suffix keeps two loan ids that
    slug alike apart. It can exceed 80 characters (a long status with an epoch-millisecond version): the
    execution is named by `execution_name`.
    """
    digest = hashlib.sha256(f"{loan_id}\x1f{status}\x1f{version}".encode()).hexdigest()[:10]
    return f"{_SLUG.sub('_', loan_id)[:36]}-{status}-v{version}-{digest}"


EXECUTION_NAME_MAX = 80  # Step Functions' limit; [A-Za-z0-9_-] keeps the name valid for CloudWatch Logs too
_EXECUTION_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{EXECUTION_NAME_MAX}}}")


def execution_name(notification_id: str) -> str:
    """The execution name of a notice: its notification id when that is a valid name, else a readable prefix of
    it (the loan id first) and a hash of the whole id. Deterministic, so a redelivered stream record maps to the
    same name and StartExecution stays idempotent."""
    if _EXECUTION_NAME.fullmatch(notification_id):
        return notification_id
    digest = hashlib.sha256(notification_id.encode()).hexdigest()[:12]
    return f"{_SLUG.sub('_', notification_id)[:EXECUTION_NAME_MAX - len(digest) - 1]}-{digest}"


class ContactHealth(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    verified: bool = False
    bounced: bool = False
    opted_out: bool = False


class QuietHours(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    start: time
    end: time


class Borrower(BaseModel):
    """One item of the Borrowers table. name, phone and email are personal data: never logged in clear."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    borrower_id: str = Field(min_length=1)
    name: str = ""
    locale: Locale = Locale.EN_US
    phone: str | None = None
    email: str | None = None
    preferred_channels: list[Channel] = Field(default_factory=list)
    phone_health: ContactHealth = Field(default_factory=ContactHealth)
    email_health: ContactHealth = Field(default_factory=ContactHealth)
    app_user: bool = False  # has the app: the in-app message center is a channel
    push_endpoint_arn: str | None = None  # SNS platform endpoint the app registered for push
    push_health: ContactHealth = Field(default_factory=ContactHealth)
    time_zone: str | None = None  # IANA name; default from the locale
    opt_out_non_critical: bool = False  # critical notices (approval, rejection, overdue) still go out
    quiet_hours: QuietHours | None = None  # non-critical notices wait until they end

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise ValueError(f"unknown time zone {value!r}") from err
        return value

    def __repr__(self) -> str:  # keep personal data out of accidental reprs in tracebacks
        return f"Borrower(borrower_id={self.borrower_id!r}, locale={self.locale.value!r})"

    __str__ = __repr__


class NoticeRef(BaseModel):
    """The execution input: ids only, never a phone number, an email or a name."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    notification_id: str
    loan_id: str
    borrower_id: str
    status: LoanStatus
    version: int


class SendRequest(NoticeRef):
    """Input of the send step: the notice, the channel to try, and the token of the waiting execution."""

    channel: Channel
    task_token: str | None = None
    plan: list[Channel] | None = None
    decided_at: datetime | None = None  # the instant the plan was made for (a Wait state's end counts as now)


class ReviewRequest(NoticeRef):
    """Input of the review step: the notice, why it needs a person, and the token the execution waits on."""

    reason: str
    task_token: str


class PrepareRequest(BaseModel):
    """Input of the prepare step: the execution's whole state. Only ids and the previous plan are read."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    notification_id: str
    loan_id: str
    borrower_id: str
    status: LoanStatus
    version: int
    plan: dict[str, Any] | None = None  # present when the execution comes back from a send-window wait

    @property
    def ref(self) -> NoticeRef:
        return NoticeRef(notification_id=self.notification_id, loan_id=self.loan_id, borrower_id=self.borrower_id,
                         status=self.status, version=self.version)

    @property
    def waited_until(self) -> datetime | None:
        value = (self.plan or {}).get("wait_until")
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class Preferences(BaseModel):
    """What a borrower may set through the API. Unknown fields are refused, not ignored."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    channels: list[Channel] = Field(default_factory=list, max_length=4)
    language: Locale = Locale.EN_US
    quiet_hours: QuietHours | None = None
    opt_out_non_critical: bool = False

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("each channel at most once")
        return value


class ReportRequest(BaseModel):
    """POST /me/reports: the borrower says they never heard about this loan."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    loan_id: str = Field(min_length=1, max_length=LOAN_ID_MAX_CHARS, pattern=LOAN_ID_PATTERN)


class ContactChange(BaseModel):
    """PUT /me/contact: a new phone number (E.164) or email address the borrower wants notices on."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    phone: str | None = Field(default=None, min_length=4, max_length=20)
    email: str | None = Field(default=None, min_length=3, max_length=254)

    @field_validator("email")
    @classmethod
    def _one_change(cls, value: str | None, info: Any) -> str | None:
        if value is not None and info.data.get("phone") is not None:
            raise ValueError("change one contact at a time")
        return value


class VerificationCode(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    code: str = Field(pattern=r"^[0-9]{6}$")
