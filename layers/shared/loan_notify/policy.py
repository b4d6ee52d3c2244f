"""Which channels a notice may use, in which order, and when. Data, versioned: the ledger records the version used.

Send windows, as a compliance officer reads them:

- A notice with a legal window (collection hours, 08:00-21:00 borrower local time) goes out only inside it. The legal
  window is law and always wins: when the borrower's quiet hours and the legal window never overlap, the quiet hours
  yield and the notice goes out in the legal window; it is never sent outside it.
- The borrower's quiet hours hold non-critical notices only, in the borrower's zone.
- Time zone: the borrower's `time_zone` when set. When it is unknown, a legal window is applied in every zone the
  locale's country spans and the notice may go out only when it is inside the window in all of them (en-US: the
  50 states, Pacific/Honolulu to America/New_York, so 08:00-21:00 becomes 13:00-21:00 New York time, 08:00-16:00 in
  Honolulu, in winter); zh-CN is Asia/Shanghai. Quiet hours of a borrower without a zone are read in the locale's
  main zone (New York, Shanghai), and in UTC for any other locale.
- Every instant is computed on aware datetimes in UTC, so a DST fall-back (the repeated hour) or spring-forward (the
  skipped hour) neither opens a window early nor returns a time already past: the next opening is always strictly
  in the future.
- No herd at the opening: a notice that has to wait is released at the opening plus a spread derived from its
  notification id, spread over the first `SPREAD_SECONDS` of the window (and never past the window's end).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from loan_notify.errors import LoanNotifyError
from loan_notify.vocabulary import Channel, LoanStatus

if TYPE_CHECKING:  # annotations only: importing pydantic's models costs a cold start ~0.1 s
    from loan_notify.models import Borrower

POLICY_VERSION = "2026-11-29.4"

SPREAD_SECONDS = 600  # notices released at a window's opening are spread over its first 10 minutes
_HORIZON = timedelta(days=3)  # every window in the table opens within a day; 3 days leaves room for DST and zones
_UTC = timezone.utc


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


class NoSendWindow(LoanNotifyError):
    """A legal window that does not open within the horizon (a policy error): a person decides."""

    reason = "no_send_window"


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
# The zones a locale's country spans, for a borrower whose own zone is unknown (en-US: the 50 states).
_COUNTRY_ZONES = {
    "zh-CN": ("Asia/Shanghai",),
    "en-US": ("America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
              "America/Anchorage", "America/Adak", "Pacific/Honolulu"),
}


def borrower_zone(borrower: Borrower) -> ZoneInfo:
    """The borrower's zone, or the locale's main zone when unknown (quiet hours, display)."""
    return ZoneInfo(borrower.time_zone or _DEFAULT_ZONE.get(borrower.locale.value, "UTC"))


def legal_zones(borrower: Borrower) -> tuple[ZoneInfo, ...]:
    """Where a legal window must hold: the borrower's zone, or every zone of the locale's country when unknown."""
    if borrower.time_zone:
        return (ZoneInfo(borrower.time_zone),)
    return tuple(ZoneInfo(name) for name in _COUNTRY_ZONES.get(borrower.locale.value, ("UTC",)))


def awake_hours(borrower: Borrower) -> SendWindow | None:
    """The complement of the borrower's quiet hours, as a send window (None: no quiet hours)."""
    quiet = borrower.quiet_hours
    return SendWindow(start=quiet.end, end=quiet.start) if quiet else None


# A rule: a window that must contain the local time in each of its zones.
_Rule = tuple[SendWindow, tuple[ZoneInfo, ...]]


def _allowed(instant: datetime, rules: list[_Rule]) -> bool:
    return all(window.contains(instant.astimezone(zone).time()) for window, zones in rules for zone in zones)


def _transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """UTC instants in [start, end] where the zone's offset changes (DST), to the second."""
    found, hour = [], timedelta(hours=1)
    probe = start
    while probe < end:
        if probe.astimezone(zone).utcoffset() != (probe + hour).astimezone(zone).utcoffset():
            low, high = probe, probe + hour
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
        probe += hour
    return found


def _boundaries(rules: list[_Rule], start: datetime, end: datetime) -> list[datetime]:
    """Every UTC instant in (start, end] where a rule may open or close: its local start and end on each day, in
    both folds (the repeated hour), and the zone's DST transitions (a skipped start opens at the jump)."""
    instants: set[datetime] = set()
    for window, zones in rules:
        for zone in zones:
            first = start.astimezone(zone).date() - timedelta(days=1)
            days = (end - start).days + 3
            for day in (first + timedelta(days=n) for n in range(days)):
                for local in (window.start, window.end):
                    for fold in (0, 1):
                        instants.add(_at(day, local, zone, fold))
            instants.update(_transitions(zone, start, end))
    return sorted(i for i in instants if start < i <= end)


def _at(day: date, local: time, zone: ZoneInfo, fold: int) -> datetime:
    return datetime.combine(day, local, tzinfo=zone).replace(fold=fold).astimezone(_UTC)


def _next_change(rules: list[_Rule], now: datetime, *, to: bool) -> datetime | None:
    """The first instant after `now` where the rules' verdict becomes `to`, or None within the horizon."""
    for instant in _boundaries(rules, now, now + _HORIZON):
        if _allowed(instant, rules) is to:
            return instant
    return None


def _spread(key: str, opening: datetime, closes: datetime | None) -> timedelta:
    """A deterministic offset in [0, SPREAD_SECONDS) for this notice, kept inside the window."""
    room = SPREAD_SECONDS if closes is None else min(SPREAD_SECONDS, int((closes - opening).total_seconds()))
    if room <= 1:
        return timedelta(0)
    return timedelta(seconds=int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % room)


def _rules(status: LoanStatus, borrower: Borrower) -> tuple[list[_Rule], list[_Rule]]:
    """(legal rules, courtesy rules) for this notice and borrower."""
    policy = POLICIES[status]
    legal = [(policy.window, legal_zones(borrower))] if policy.window else []
    awake = None if policy.critical else awake_hours(borrower)
    courtesy = [(awake, (borrower_zone(borrower),))] if awake else []
    return legal, courtesy


def next_opening(status: LoanStatus, borrower: Borrower, now: datetime, spread_key: str | None = None
                 ) -> datetime | None:
    """None if the notice may go out now; otherwise the instant (UTC, strictly after `now`) it may.

    The policy's legal window always applies and always wins; the borrower's quiet hours apply to non-critical
    notices and yield when they never overlap the legal window. With a `spread_key` (the notification id), a
    waiting notice is released at a deterministic point of the window's first `SPREAD_SECONDS`.
    """
    now = now.astimezone(_UTC)
    legal, courtesy = _rules(status, borrower)
    for rules in (legal + courtesy, legal):  # the quiet hours yield when the two never open together
        if not rules:
            return None
        if _allowed(now, rules):
            return None
        opening = _next_change(rules, now, to=True)
        if opening is None:
            continue
        opening = _whole_second(opening, rules)
        if spread_key:
            opening += _spread(spread_key, opening, _next_change(rules, opening, to=False))
        return opening
    raise NoSendWindow(f"the {status.value} send window does not open within {_HORIZON.days} days")


def window_closes_at(status: LoanStatus, borrower: Borrower, now: datetime) -> datetime | None:
    """When the legal window the notice may be sent in closes: None if the notice has no legal window.

    Inside the window: the instant it closes (after `now`). Outside: the instant it last closed (at or before
    `now`), so a sender refuses when `now >= window_closes_at(...)`.
    """
    now = now.astimezone(_UTC)
    legal, _ = _rules(status, borrower)
    if not legal:
        return None
    if _allowed(now, legal):
        closes = _next_change(legal, now, to=False)
        return closes or now + _HORIZON
    past = [i for i in _boundaries(legal, now - _HORIZON, now) if not _allowed(i, legal)
            and _allowed(i - timedelta(seconds=1), legal)]
    return past[-1] if past else now


def _whole_second(instant: datetime, rules: list[_Rule]) -> datetime:
    """The Wait state's timestamp keeps milliseconds: open on a whole second that is still inside the window."""
    if instant.microsecond == 0:
        return instant
    rounded = instant.replace(microsecond=0) + timedelta(seconds=1)
    return rounded if _allowed(rounded, rules) else instant


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


# ---------------------------------------------------------------- a status change whose borrower row is missing
BORROWER_WAIT_SECONDS = 900  # default of the BorrowerWaitSeconds parameter: then a review case
BORROWER_RETRY_SECONDS = (10, 120)  # look again after as long as already waited, within these bounds


def borrower_retry_at(missing_since: datetime, now: datetime, wait_s: int = BORROWER_WAIT_SECONDS
                      ) -> datetime | None:
    """When to look for a missing borrower row again, or None once `wait_s` has passed since it was first missed.

    The platform may write a loan a moment before its borrower: the notice waits (10 s, 20 s, 40 s... at most
    2 minutes between looks), and the last look is exactly at the limit.
    """
    limit = missing_since + timedelta(seconds=wait_s)
    if now >= limit:
        return None
    shortest, longest = BORROWER_RETRY_SECONDS
    step = min(max((now - missing_since).total_seconds(), shortest), longest)
    return min(now + timedelta(seconds=step), limit)
