"""Which channels a notice may use, in which order. Data, versioned: the ledger records the version used."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from loan_notify.models import Borrower
from loan_notify.vocabulary import Channel, LoanStatus

POLICY_VERSION = "2026-11-29.3"


@dataclass(frozen=True)
class SendWindow:
    """Local hours a notice may go out in, [start, end). A notice due outside waits for the next opening."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # a window across midnight


COLLECTION_HOURS = SendWindow(time(8), time(21))  # collection-type notices: 08:00-21:00 borrower local time


@dataclass(frozen=True)
class NoticePolicy:
    channels: tuple[Channel, ...]
    fallback: bool = True  # may the notice move to the next channel when one fails permanently?
    critical: bool = False  # critical notices ignore opt-out of non-critical messages and quiet hours
    confirm_within_s: int = 1800  # no delivery receipt by then: move to the next channel
    window: SendWindow | None = None  # legal send window (collection-type notices)
    supersedable: bool = False  # a newer status of the same loan makes a still-pending notice moot


_DEFAULT = NoticePolicy(channels=(Channel.SMS, Channel.PUSH, Channel.EMAIL, Channel.INBOX))
_CRITICAL = replace(_DEFAULT, critical=True, confirm_within_s=900)
_INTERIM = replace(_DEFAULT, supersedable=True)  # progress updates: the next status says more

POLICIES: dict[LoanStatus, NoticePolicy] = {
    status: _DEFAULT for status in LoanStatus
} | {
    LoanStatus.SUBMITTED: _INTERIM,
    LoanStatus.PRELIMINARY_APPROVED: _INTERIM,
    LoanStatus.DOCUMENTS_REQUIRED: _INTERIM,
    LoanStatus.APPROVED: _CRITICAL,
    LoanStatus.REJECTED: _CRITICAL,  # owed to the applicant (e.g. Reg B): never superseded, never dropped
    LoanStatus.REPAYMENT_DUE: replace(_INTERIM, window=COLLECTION_HOURS),
    LoanStatus.OVERDUE: replace(_CRITICAL, window=COLLECTION_HOURS),
}

_DEFAULT_ZONE = {"zh-CN": "Asia/Shanghai", "en-US": "America/New_York"}


def borrower_zone(borrower: Borrower) -> ZoneInfo:
    return ZoneInfo(borrower.time_zone or _DEFAULT_ZONE.get(borrower.locale.value, "UTC"))


def next_opening(status: LoanStatus, borrower: Borrower, now: datetime) -> datetime | None:
    """None if the notice may go out now; otherwise the UTC instant it may (the state machine waits).

    The policy's legal window always applies. The borrower's quiet hours apply to non-critical notices.
    """
    policy = POLICIES[status]
    windows = [w for w in (policy.window, None if policy.critical else borrower.awake_hours()) if w]
    zone = borrower_zone(borrower)
    local = now.astimezone(zone)
    for step in range(48 * 4):  # look ahead two days in 15-minute steps, then exactly to the minute
        candidate = local + timedelta(minutes=15 * step)
        if all(w.contains(candidate.time()) for w in windows):
            if step == 0:
                return None
            exact = candidate - timedelta(minutes=15)
            while not all(w.contains(exact.time()) for w in windows):
                exact += timedelta(minutes=1)
            return exact.replace(second=0, microsecond=0).astimezone(now.tzinfo)
    return None  # windows that never open together: send rather than hold a notice forever


def channel_plan(status: LoanStatus, borrower: Borrower) -> list[Channel]:
    """The ordered channels to try: the policy's set, reordered by the borrower's preferences.

    Contacts known to be dead (bounced, opted out of a non-critical notice, missing) are left out here
    so the execution does not waste a transition on them; the sender re-checks at send time.
    """
    policy = POLICIES[status]
    preferred = [c for c in borrower.preferred_channels if c in policy.channels]
    ordered = preferred + [c for c in policy.channels if c not in preferred]
    plan = [c for c in ordered if _usable(c, borrower, policy)]
    return plan if policy.fallback else plan[:1]


def destination(channel: Channel, borrower: Borrower) -> str | None:
    """Where a channel reaches the borrower (personal data: never logged, never in an execution)."""
    return {Channel.SMS: borrower.phone, Channel.EMAIL: borrower.email, Channel.PUSH: borrower.push_endpoint_arn,
            Channel.INBOX: borrower.borrower_id if borrower.app_user else None}[channel]


def _usable(channel: Channel, borrower: Borrower, policy: NoticePolicy) -> bool:
    contact = destination(channel, borrower)
    health = {Channel.SMS: borrower.phone_health, Channel.EMAIL: borrower.email_health,
              Channel.PUSH: borrower.push_health}.get(channel)
    if health is None:  # the inbox cannot bounce or opt out
        return contact is not None
    if not contact or health.bounced:
        return False
    if health.opted_out:
        # A STOP on SMS is enforced by the carrier for every message; an email unsubscribe covers
        # non-critical notices only.
        return channel is not Channel.SMS and policy.critical
    return True
