"""The review console's use cases with in-memory ports: the queue's order, counts and filters, a case's timeline
and masked contacts, the decision form's rules, and a case held by someone else."""

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from loan_notify.console import ConsoleDecision, case_view, decide, queue
from loan_notify.models import Borrower, ContactHealth
from loan_notify.review import CaseTaken
from tests.unit.fakes import FakeBorrowers

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


class FakeCases:
    def __init__(self, *cases):
        self.items = {c["case_id"]: {"state": "OPEN", **c} for c in cases}

    def open_cases(self):
        return [c for c in self.items.values() if c["state"] == "OPEN"]

    def get(self, case_id):
        return self.items.get(case_id)


class FakeLoanLedger:
    def __init__(self, *notices):
        self.notices = list(notices)

    def by_loan(self, loan_id):
        return [n for n in self.notices if n["loan_id"] == loan_id]


def _case(case_id, loan_id, reason, due_at, **fields):
    return {"case_id": case_id, "loan_id": loan_id, "status": "APPROVED", "reason": reason,
            "opened_at": "2026-11-29T08:00:00.000Z", "due_at": due_at, **fields}


def test_the_queue_is_most_urgent_first_with_counts_over_every_open_case_and_filters():
    cases = FakeCases(
        _case("c-late", "L-1", "no_channel_delivered", "2026-11-29T13:00:00.000Z"),
        _case("c-over", "L-2", "borrower_reports_not_notified", "2026-11-29T11:00:00.000Z", assignee="li"),
        _case("c-soon", "L-12", "borrower_not_found", "2026-11-29T12:30:00.000Z"),
        _case("c-done", "L-1", "prepare_failed", "2026-11-29T10:00:00.000Z", state="RESOLVED"))
    everything = queue(cases=cases, clock=lambda: NOW)
    assert [r["case_id"] for r in everything["cases"]] == ["c-over", "c-soon", "c-late"]
    assert [r["overdue"] for r in everything["cases"]] == [True, False, False]
    assert [r["category"] for r in everything["cases"]] == ["borrower_report", "borrower_missing", "no_channel"]
    counts = everything["counts"]
    assert (counts["open"], counts["overdue"], counts["unassigned"], counts["prepare_failed"]) == (3, 1, 2, 0)
    assert [r["case_id"] for r in queue(cases=cases, loan="l-1", clock=lambda: NOW)["cases"]] == ["c-soon", "c-late"]
    filtered = queue(cases=cases, category_filter="no_channel", clock=lambda: NOW)
    assert [r["case_id"] for r in filtered["cases"]] == ["c-late"] and filtered["counts"]["open"] == 3


def test_a_case_shows_masked_contacts_with_their_health_and_the_loan_timeline_in_order():
    borrower = Borrower(borrower_id="B-1", name="Ada Lovelace", phone="+8613800138000", email="ada@example.com",
                        email_health=ContactHealth(bounced=True), app_user=True)
    notice = {"notification_id": "L-1-APPROVED-v1-x", "loan_id": "L-1", "borrower_id": "B-1", "status": "APPROVED",
              "version": 1, "state": "NEEDS_REVIEW", "status_updated_at": "2026-11-29T08:00:00.000Z",
              "created_at": "2026-11-29T08:00:01.000Z", "review_cases": 1,
              "attempts": [{"attempt": 1, "channel": "SMS", "provider": "sns", "destination": "+86*******8000",
                            "result": "SENT", "started_at": "2026-11-29T08:00:02.000Z",
                            "finished_at": "2026-11-29T08:00:03.000Z",
                            "receipts": {"FAILED": {"status": "FAILED", "at": "2026-11-29T08:01:00.000Z"}}}]}
    case = _case("L-1-APPROVED-v1-x-case1", "L-1", "no_channel_delivered", "2026-11-29T13:00:00.000Z",
                 notification_id="L-1-APPROVED-v1-x", borrower_id="B-1", task_token="secret-token",
                 opened_at="2026-11-29T08:20:00.000Z")
    view = case_view(case["case_id"], cases=FakeCases(case), ledger=FakeLoanLedger(notice),
                     borrowers=FakeBorrowers(borrower), clock=lambda: NOW)
    assert "task_token" not in view["case"] and "Ada" not in str(view)
    assert [(c["channel"], c["value"]) for c in view["borrower"]["contacts"]] == [
        ("SMS", "+86*******8000"), ("EMAIL", "a***@example.com"), ("INBOX", "app")]
    assert view["borrower"]["contacts"][1]["health"]["bounced"] is True
    (shown,) = view["notices"]
    assert [e["kind"] for e in shown["timeline"]] == ["status_change", "notice_opened", "attempt", "receipt",
                                                      "case_opened"]
    assert shown["timeline"][2]["confirm_by"] == "2026-11-29T08:15:03.000Z"  # APPROVED: 15 minutes after the send
    assert shown["this_case"] is True


def test_a_report_quoting_another_borrowers_loan_shows_none_of_that_loans_notices():
    # B-2 reports "never notified about L-1", which is B-1's loan: the reviewer must not see B-1's notices
    theirs = {"notification_id": "L-1-APPROVED-v1-x", "loan_id": "L-1", "borrower_id": "B-1", "status": "APPROVED",
              "version": 1, "state": "DELIVERED", "status_reason": "Salary verified", "attempts": []}
    report = _case("report-B-2-L-1-1", "L-1", "borrower_reports_not_notified_no_notice_on_record",
                   "2026-11-29T13:00:00.000Z", borrower_id="B-2", kind="borrower_report")
    view = case_view(report["case_id"], cases=FakeCases(report), ledger=FakeLoanLedger(theirs),
                     borrowers=FakeBorrowers(Borrower(borrower_id="B-2", name="Bo", phone="+8613800138001")),
                     clock=lambda: NOW)
    assert view["notices"] == [] and "Salary verified" not in str(view)


def test_the_decision_form_needs_a_note_and_names_the_corrected_contact():
    with pytest.raises(ValidationError):
        ConsoleDecision(case_id="c", decision="closed", note="   ")
    with pytest.raises(ValidationError):
        ConsoleDecision(case_id="c", decision="contact_corrected", note="fixed")
    with pytest.raises(ValidationError):
        ConsoleDecision(case_id="c", decision="closed", note="x", corrected=["phone"])
    form = ConsoleDecision(case_id="c", decision="contact_corrected", note=" fixed ", corrected=["phone"])
    assert form.note == "fixed"


def test_a_case_held_by_someone_else_cannot_be_decided():
    cases = FakeCases(_case("c-1", "L-1", "no_channel_delivered", "2026-11-29T13:00:00.000Z", assignee="ops.li"))
    request = ConsoleDecision(case_id="c-1", decision="closed", note="withdrawn")
    with pytest.raises(CaseTaken) as taken:
        decide(request, by="ops.sam", cases=cases, ledger=None, contacts=None, callbacks=None, executions=None)
    assert taken.value.assignee == "ops.li"
