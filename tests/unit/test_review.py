"""Review domain rules that need no tables: closing a case a receipt made moot, resend execution names, wait keys."""

from typing import Any

from loan_notify.review import ReviewStep, close_case_if_delivered, resend_execution_name


class NoticeStore:
    """The ledger reads and writes the rule uses, in memory."""

    def __init__(self, notice: dict[str, Any]) -> None:
        self.notice = notice

    def get(self, notification_id: str) -> dict[str, Any] | None:
        return self.notice if notification_id == self.notice["notification_id"] else None

    def case_id(self, notification_id: str) -> str | None:
        return (self.get(notification_id) or {}).get("case_id")

    def settle_delivered(self, notification_id: str, at: str) -> bool:
        self.notice.update(state="DELIVERED", delivered_at=at)
        return True


class CaseStore:
    def __init__(self, *cases: dict[str, Any]) -> None:
        self.cases = {c["case_id"]: c for c in cases}

    def get(self, case_id: str) -> dict[str, Any] | None:
        return self.cases.get(case_id)

    def begin_resolve(self, case_id: str, action: dict[str, Any]) -> dict[str, Any]:
        case = self.cases[case_id]
        case.setdefault("pending", action)
        return case

    def finish_resolve(self, case_id: str, action: dict[str, Any], outcome: str) -> dict[str, Any]:
        case = self.cases[case_id]
        case.update(state="RESOLVED", decision=action["decision"], note=action["note"], resolved_by=action["by"],
                    outcome=outcome)
        case.pop("pending")
        return case


class Callbacks:
    def __init__(self) -> None:
        self.answers: list[tuple[str, dict[str, Any]]] = []

    def success(self, token: str, output: dict[str, Any]) -> bool:
        self.answers.append((token, output))
        return True


def _notice(delivery_status: str) -> dict[str, Any]:
    return {"notification_id": "N-1", "state": "NEEDS_REVIEW", "case_id": "N-1-case1", "attempts": [
        {"attempt": 1, "channel": "SMS", "result": "SENT", "delivery_status": delivery_status,
         # as the ledger keeps them: the first receipt of each kind, by kind
         "receipts": {delivery_status: {"status": delivery_status, "at": "2026-11-29T09:00:00.000Z"}}}]}


def _case() -> dict[str, Any]:
    return {"case_id": "N-1-case1", "notification_id": "N-1", "state": "OPEN", "task_token": "token-1"}


def test_a_confirming_receipt_closes_the_open_case_and_ends_the_execution_as_delivered():
    # GIVEN a notice in review whose SMS a late receipt confirmed
    ledger, cases, callbacks = NoticeStore(_notice("DELIVERED")), CaseStore(_case()), Callbacks()
    # WHEN the receipt path asks to close its case (twice: a redelivered receipt)
    first = close_case_if_delivered("N-1", ledger=ledger, cases=cases, callbacks=callbacks)
    second = close_case_if_delivered("N-1", ledger=ledger, cases=cases, callbacks=callbacks)
    # THEN the case is resolved once, by the system, with a note; the execution is told "delivered" once
    assert (first, second) == ("N-1-case1", None)
    case = cases.get("N-1-case1")
    assert (case["state"], case["decision"], case["resolved_by"]) == ("RESOLVED", "delivered", "loan-notify")
    assert "receipt" in case["note"]
    assert callbacks.answers == [("token-1", {"decision": "delivered", "case_id": "N-1-case1"})]
    # AND the notice is DELIVERED as of the receipt
    assert (ledger.notice["state"], ledger.notice["delivered_at"]) == ("DELIVERED", "2026-11-29T09:00:00.000Z")


def test_a_receipt_that_does_not_confirm_leaves_the_case_to_a_person():
    ledger, cases, callbacks = NoticeStore(_notice("FAILED")), CaseStore(_case()), Callbacks()
    assert close_case_if_delivered("N-1", ledger=ledger, cases=cases, callbacks=callbacks) is None
    assert cases.get("N-1-case1")["state"] == "OPEN" and callbacks.answers == []
    assert ledger.notice["state"] == "NEEDS_REVIEW"


def test_resend_execution_names_fit_step_functions_and_are_stable():
    assert resend_execution_name("L-1-APPROVED-v1-90d00fe3cb", 2) == "L-1-APPROVED-v1-90d00fe3cb-r2"
    long = "L-" + "x" * 60 + "-PRELIMINARY_APPROVED-v1732870000000-90d00fe3cb"
    names = {resend_execution_name(long, 12) for _ in range(2)}
    (name,) = names
    assert len(name) <= 80 and name.endswith("-r12") and name != resend_execution_name(long + "y", 12)


def test_the_wait_key_names_the_execution_and_the_instant_it_entered_review():
    step = ReviewStep(notification_id="N-1", loan_id="L-1", borrower_id="B-1", status="APPROVED", version=1,
                      reason="no_channel_delivered", task_token="t", execution_name="N-1",
                      entered_at="2026-11-29T08:00:00.000Z")
    assert step.wait_key == "N-1@2026-11-29T08:00:00.000Z"
    assert step.model_copy(update={"entered_at": None}).wait_key is None
