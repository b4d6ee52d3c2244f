"""In-memory ports for domain tests: same methods as the DynamoDB-backed repositories."""

from __future__ import annotations

from typing import Any

from loan_notify.errors import BorrowerNotFound
from loan_notify.models import Borrower, LoanImage
from loan_notify.templates import RenderedMessage
from loan_notify.vocabulary import FINAL_STATES


class FakeLedger:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def open_notice(self, loan: LoanImage, execution_name: str) -> bool:
        if loan.notification_id in self.items:
            self.items[loan.notification_id]["duplicate_deliveries"] = (
                self.items[loan.notification_id].get("duplicate_deliveries", 0) + 1)
            return False
        self.items[loan.notification_id] = {
            "notification_id": loan.notification_id, "loan_id": loan.loan_id, "borrower_id": loan.borrower_id,
            "status": loan.status.value, "version": loan.version, "state": "STARTED", "attempts": [],
            "amount": loan.amount, "currency": loan.currency, "status_reason": loan.status_reason,
            "execution_name": execution_name}
        return True

    def reject(self, notification_id: str, reason: str, detail: str, context: dict[str, Any]) -> None:
        self.items.setdefault(notification_id, {**context, "notification_id": notification_id, "state": "REJECTED",
                                                "reason": reason, "detail": detail})

    def get(self, notification_id: str) -> dict[str, Any] | None:
        return self.items.get(notification_id)

    def owner(self, notification_id: str) -> dict[str, Any] | None:
        item = self.items.get(notification_id)
        return None if item is None else {k: item[k] for k in ("borrower_id", "state") if k in item}

    def expire_attempt(self, notification_id: str, attempt: int, *, deadline_s: int, at: str) -> bool:
        attempts = self.items.get(notification_id, {}).get("attempts", [])
        if len(attempts) < attempt:
            return False
        attempts[attempt - 1].setdefault("expired_at", at)
        attempts[attempt - 1].setdefault("deadline_s", deadline_s)
        return True

    def mark_undelivered(self, notification_id: str, reason: str) -> bool:
        item = self.items[notification_id]
        if item["state"] in {s.value for s in FINAL_STATES}:
            return False
        item.update(state="UNDELIVERED", reason=reason)
        return True

    def begin_attempt(self, notification_id: str, pending: dict[str, Any]) -> None:
        from loan_notify.errors import AttemptRaced

        item = self.items[notification_id]
        if "pending_attempt" in item or len(item.get("attempts", [])) != int(pending["attempt"]) - 1:
            raise AttemptRaced(f"attempt {pending['attempt']} of {notification_id}: the notice changed")
        item["pending_attempt"] = dict(pending)

    def drop_pending(self, notification_id: str, attempt_no: int, *, throttled: bool = False) -> None:
        item = self.items[notification_id]
        if item.get("pending_attempt", {}).get("attempt") == attempt_no:
            del item["pending_attempt"]
            item["throttled"] = item.get("throttled", 0) + int(throttled)

    def append_attempt(self, notification_id: str, attempt: dict[str, Any], *, state: Any = None,
                       reason: str | None = None, pinned: dict[str, Any] | None = None) -> None:
        item = self.items[notification_id]
        assert item.get("pending_attempt", {}).get("attempt") == attempt["attempt"], "attempt was never begun"
        del item["pending_attempt"]
        item.update(pinned or {})
        item["attempts"] = [*item["attempts"], dict(attempt)]
        if state is not None and item["state"] not in {s.value for s in FINAL_STATES}:
            item["state"] = state.value
        if reason is not None:
            item["reason"] = reason

    def note_window_missed(self, notification_id: str, closed_at: str) -> None:
        item = self.items[notification_id]
        item.update(window_missed_at=closed_at, windows_missed=item.get("windows_missed", 0) + 1)

    def mark_superseded(self, notification_id: str, by: str) -> None:
        self.items[notification_id].update(state="SUPERSEDED", superseded_by=by)

    def newer_notice(self, loan_id: str, version: int) -> str | None:
        return None


class FakeBorrowers:
    def __init__(self, *borrowers: Borrower) -> None:
        self.by_id = {b.borrower_id: b for b in borrowers}

    def exists(self, borrower_id: str) -> bool:
        return borrower_id in self.by_id

    def existing(self, borrower_ids: set[str]) -> set[str]:
        return {i for i in borrower_ids if i in self.by_id}

    def get(self, borrower_id: str) -> Borrower:
        if borrower_id not in self.by_id:
            raise BorrowerNotFound(borrower_id)
        return self.by_id[borrower_id]


class FakeStarter:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.started: dict[str, str] = {}
        self.fail_with = fail_with

    def __call__(self, name: str, payload: str) -> bool:
        if self.fail_with:
            raise self.fail_with
        if name in self.started:
            return False
        self.started[name] = payload
        return True


class RecordingSender:
    def __init__(self, provider: str, fail_with: Exception | None = None, confirms: bool = True) -> None:
        self.provider = provider
        self.fail_with = fail_with
        self.confirms = confirms
        self.sent: list[tuple[str | None, RenderedMessage]] = []

    def send(self, destination: str | None, message: RenderedMessage) -> Any:
        from loan_notify.channels import Delivery

        if self.fail_with:
            raise self.fail_with
        self.sent.append((destination, message))
        return Delivery(self.provider, f"msg-{len(self.sent)}", "masked")
