"""Which channels a notice may use, in which order. Data, versioned: the ledger records the version used."""

from __future__ import annotations

from dataclasses import dataclass

from loan_notify.models import Borrower
from loan_notify.vocabulary import Channel, LoanStatus

POLICY_VERSION = "2026-11-29.2"


@dataclass(frozen=True)
class NoticePolicy:
    channels: tuple[Channel, ...]
    fallback: bool = True  # may the notice move to the next channel when one fails permanently?
    critical: bool = False  # critical notices ignore opt-out of non-critical messages
    confirm_within_s: int = 1800  # no delivery receipt by then: move to the next channel


_DEFAULT = NoticePolicy(channels=(Channel.SMS, Channel.EMAIL))
_CRITICAL = NoticePolicy(channels=(Channel.SMS, Channel.EMAIL), critical=True, confirm_within_s=900)

POLICIES: dict[LoanStatus, NoticePolicy] = {
    status: _DEFAULT for status in LoanStatus
} | {
    LoanStatus.APPROVED: _CRITICAL,
    LoanStatus.REJECTED: _CRITICAL,
    LoanStatus.OVERDUE: _CRITICAL,
}


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


def _usable(channel: Channel, borrower: Borrower, policy: NoticePolicy) -> bool:
    if channel is Channel.SMS:
        contact, health = borrower.phone, borrower.phone_health
    else:
        contact, health = borrower.email, borrower.email_health
    if not contact or health.bounced:
        return False
    if health.opted_out:
        # A STOP on SMS is enforced by the carrier for every message; an email unsubscribe covers
        # non-critical notices only.
        return channel is Channel.EMAIL and policy.critical
    return True
