"""Prepare with a fake clock and in-memory ports: a borrower row that is not there yet is waited for, bounded."""

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from loan_notify.errors import BorrowerNotFound
from loan_notify.models import Borrower, LoanImage, NoticeRef
from loan_notify.notify import prepare
from loan_notify.policy import borrower_retry_at
from tests.unit.fakes import FakeBorrowers, FakeLedger

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


class WaitingLedger(FakeLedger):
    """The ledger calls prepare makes, in memory."""

    def borrower_missing(self, notification_id: str, now: datetime) -> datetime:
        item = self.items[notification_id]
        item.setdefault("borrower_missing_since", now)
        return item["borrower_missing_since"]

    def newer_notice(self, loan_id: str, version: int) -> str | None:
        newer = [i for i in self.items.values() if i["loan_id"] == loan_id and i["version"] > version]
        return newer[0]["notification_id"] if newer else None

    def mark_superseded(self, notification_id: str, by: str) -> None:
        self.items[notification_id].update(state="SUPERSEDED", superseded_by=by)


def _notice(ledger: FakeLedger, status: str = "APPROVED", version: int = 1) -> NoticeRef:
    loan = LoanImage.model_validate({"loan_id": "L-1", "borrower_id": "B-late", "status": status,
                                     "updated_at": "2026-11-29T12:00:00Z", "version": version})
    ledger.open_notice(loan, loan.notification_id)
    return NoticeRef(notification_id=loan.notification_id, loan_id=loan.loan_id, borrower_id=loan.borrower_id,
                     status=loan.status, version=loan.version)


def _instant(plan: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(plan["wait_until"].replace("Z", "+00:00"))


def test_looks_again_after_as_long_as_it_waited_within_bounds_and_last_at_the_limit():
    assert borrower_retry_at(T0, T0) == T0 + timedelta(seconds=10)
    assert borrower_retry_at(T0, T0 + timedelta(seconds=40)) == T0 + timedelta(seconds=80)
    assert borrower_retry_at(T0, T0 + timedelta(seconds=300)) == T0 + timedelta(seconds=420)  # at most 2 minutes
    assert borrower_retry_at(T0, T0 + timedelta(seconds=850)) == T0 + timedelta(seconds=900)  # never past the limit
    assert borrower_retry_at(T0, T0 + timedelta(seconds=900)) is None
    assert borrower_retry_at(T0, T0 + timedelta(seconds=30), wait_s=20) is None


def test_a_missing_borrower_is_waited_for_and_the_notice_goes_out_when_the_row_appears():
    # GIVEN a notice whose borrower row does not exist yet
    ledger, borrowers = WaitingLedger(), FakeBorrowers()
    ref = _notice(ledger)
    # WHEN prepare runs (the machine clock stands still; each Wait state has waited for its wait_until)
    first = prepare(ref, borrowers=borrowers, ledger=ledger, clock=lambda: T0)
    # THEN it asks to wait and look again, and records when the borrower was first missed
    assert first["borrower_missing"] is True and first["channels"] == []
    assert _instant(first) == T0 + timedelta(seconds=10)
    assert ledger.items[ref.notification_id]["borrower_missing_since"] == T0
    second = prepare(ref, borrowers=borrowers, ledger=ledger, clock=lambda: T0, waited_until=_instant(first))
    assert second["borrower_missing"] is True and _instant(second) == T0 + timedelta(seconds=20)
    # AND once the platform writes the borrower, the next look plans the send as usual
    borrowers.by_id["B-late"] = Borrower(borrower_id="B-late", phone="+8613800138000")
    ready = prepare(ref, borrowers=borrowers, ledger=ledger, clock=lambda: T0, waited_until=_instant(second))
    assert ready["borrower_missing"] is False and ready["wait_until"] is None and ready["channels"] == ["SMS"]
    assert ledger.items[ref.notification_id]["state"] == "STARTED"


def test_a_borrower_still_missing_at_the_limit_raises_for_a_review_case():
    # GIVEN a borrower that never appears, and a 900-second limit
    ledger = WaitingLedger()
    ref = _notice(ledger)
    plan, looks = prepare(ref, borrowers=FakeBorrowers(), ledger=ledger, clock=lambda: T0), 1
    # WHEN the execution keeps waiting and looking
    with pytest.raises(BorrowerNotFound) as raised:
        while True:
            waited = _instant(plan)
            assert waited <= T0 + timedelta(seconds=900)
            looks += 1
            plan = prepare(ref, borrowers=FakeBorrowers(), ledger=ledger, clock=lambda: T0, waited_until=waited)
    # THEN it gives up exactly at the limit, after a bounded number of looks, with the reason the case carries
    assert waited == T0 + timedelta(seconds=900) and looks <= 15
    assert raised.value.reason == "borrower_not_found"
    assert ledger.items[ref.notification_id]["borrower_missing_since"] == T0


def test_the_limit_counts_from_the_first_miss_recorded_in_the_ledger():
    # GIVEN a notice whose borrower was first missed 16 minutes ago (e.g. Prepare restarted after a review)
    ledger = WaitingLedger()
    ref = _notice(ledger)
    ledger.items[ref.notification_id]["borrower_missing_since"] = T0 - timedelta(minutes=16)
    # THEN the next look gives up at once; with a longer limit it waits again
    with pytest.raises(BorrowerNotFound):
        prepare(ref, borrowers=FakeBorrowers(), ledger=ledger, clock=lambda: T0)
    plan = prepare(ref, borrowers=FakeBorrowers(), ledger=ledger, clock=lambda: T0, borrower_wait_s=3600)
    assert plan["borrower_missing"] is True and _instant(plan) == T0 + timedelta(seconds=120)


def test_a_superseded_notice_stands_down_without_waiting_for_its_borrower():
    ledger = WaitingLedger()
    ref = _notice(ledger, status="PRELIMINARY_APPROVED", version=1)
    newer = _notice(ledger, status="APPROVED", version=2)
    plan = prepare(ref, borrowers=FakeBorrowers(), ledger=ledger, clock=lambda: T0)
    assert plan["superseded_by"] == newer.notification_id and plan["borrower_missing"] is False
    assert "borrower_missing_since" not in ledger.items[ref.notification_id]
