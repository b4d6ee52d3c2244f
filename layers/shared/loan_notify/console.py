"""The review console's use cases: the queue of open cases, one case with its loan's timeline, taking a case,
deciding it. Plain functions over the repositories (passed in), shared by the console's API function.

Deciding goes through `review.resolve_case`, the function behind `python -m loan_notify_ops cases resolve`: the
console only adds that the case must be held by the person deciding.

What leaves here is safe to show a reviewer: ids, statuses, reasons, masked contacts and their health. No name,
no clear phone number or address, no task token.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loan_notify.clock import iso, utc_now
from loan_notify.errors import BorrowerNotFound
from loan_notify.evidence import plain
from loan_notify.ledger import Ledger
from loan_notify.masking import mask_email, mask_endpoint, mask_phone
from loan_notify.policy import POLICIES
from loan_notify.review import CaseNotOpen, CaseState, CaseTaken, Decision, ReviewCases, resolve_case
from loan_notify.vocabulary import Channel, LoanStatus


class Category(StrEnum):
    """The queue's filter: why a person owns the case."""

    NO_CHANNEL = "no_channel"  # every allowed channel failed
    BORROWER_REPORT = "borrower_report"  # the borrower said they were never told
    PREPARE_FAILED = "prepare_failed"  # the notice could not be prepared (a policy or data error)
    BORROWER_MISSING = "borrower_missing"  # no borrower row within BorrowerWaitSeconds
    OUTCOME_UNKNOWN = "outcome_unknown"  # a provider may have the message: a person checks before anything else
    OTHER = "other"


_CATEGORY = {
    "no_channel_delivered": Category.NO_CHANNEL,
    "borrower_reports_not_notified": Category.BORROWER_REPORT,
    "borrower_reports_not_notified_no_notice_on_record": Category.BORROWER_REPORT,
    "prepare_failed": Category.PREPARE_FAILED,
    "borrower_not_found": Category.BORROWER_MISSING,
    "send_outcome_unknown": Category.OUTCOME_UNKNOWN,
}

_CASE_FIELDS = ("case_id", "kind", "notification_id", "loan_id", "borrower_id", "status", "reason", "state",
                "opened_at", "due_at", "alerts", "last_alert_at", "assignee", "assigned_at", "decision", "note",
                "resolved_by", "resolved_at", "outcome")
_CORRECTED = {"phone": Channel.SMS, "email": Channel.EMAIL}


def category(reason: str | None) -> Category:
    return _CATEGORY.get(str(reason or ""), Category.OTHER)


def _summary(case: dict[str, Any], now: str) -> dict[str, Any]:
    row = {k: case.get(k) for k in ("case_id", "loan_id", "status", "reason", "opened_at", "due_at", "assignee")}
    row["category"] = category(case.get("reason")).value
    row["overdue"] = str(case.get("due_at", "")) <= now
    row["resolving"] = (case.get("pending") or {}).get("decision")
    return row


def queue(*, cases: ReviewCases, category_filter: str | None = None, loan: str | None = None,
          clock=utc_now) -> dict[str, Any]:
    """Open cases, most urgent first (due time), with counts over every open case and the filtered rows."""
    now = iso(clock())
    rows = sorted((_summary(c, now) for c in cases.open_cases()), key=lambda r: (r["due_at"], r["case_id"]))
    counts: dict[str, int] = {"open": len(rows), "overdue": sum(r["overdue"] for r in rows),
                              "unassigned": sum(not r["assignee"] for r in rows)}
    counts |= {c.value: sum(r["category"] == c.value for r in rows) for c in Category}
    needle = (loan or "").strip().lower()
    shown = [r for r in rows if (not category_filter or r["category"] == category_filter)
             and (not needle or needle in str(r["loan_id"]).lower())]
    return {"generated_at": now, "counts": counts, "cases": shown}


def _contacts(borrower: Any) -> list[dict[str, Any]]:
    shown = [("SMS", mask_phone(borrower.phone), borrower.phone_health),
             ("EMAIL", mask_email(borrower.email), borrower.email_health),
             ("PUSH", mask_endpoint(borrower.push_endpoint_arn), borrower.push_health)]
    contacts = [{"channel": channel, "value": value, "health": health.model_dump()}
                for channel, value, health in shown if value]
    if borrower.app_user:
        contacts.append({"channel": "INBOX", "value": "app", "health": None})
    return contacts


def _confirm_by(notice: dict[str, Any], attempt: dict[str, Any]) -> str | None:
    """The deadline a sent message had for its receipt (the policy's, counted from the provider's acceptance)."""
    if attempt.get("result") != "SENT" or not attempt.get("finished_at"):
        return None
    try:
        within = POLICIES[LoanStatus(notice.get("status"))].confirm_within_s
        sent = datetime.fromisoformat(str(attempt["finished_at"]).replace("Z", "+00:00"))
    except ValueError:
        return None
    return iso(sent + timedelta(seconds=within))


def _timeline(notice: dict[str, Any], notice_cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"at": notice.get("status_updated_at"), "kind": "status_change", "status": notice.get("status"),
         "version": notice.get("version"), "status_reason": notice.get("status_reason")},
        {"at": notice.get("created_at"), "kind": "notice_opened", "plan": notice.get("plan", [])},
    ]
    for attempt in notice.get("attempts", []):
        events.append({"at": attempt.get("started_at"), "kind": "attempt",
                       **{k: attempt.get(k) for k in ("attempt", "channel", "provider", "destination", "result",
                                                      "error", "message_id", "delivery_status", "finished_at")},
                       "confirm_by": _confirm_by(notice, attempt)})
        receipts = attempt.get("receipts") or {}
        for receipt in (receipts.values() if isinstance(receipts, dict) else receipts):
            events.append({"at": receipt.get("at"), "kind": "receipt", "channel": attempt.get("channel"),
                           "attempt": attempt.get("attempt"),
                           **{k: receipt.get(k) for k in ("status", "source", "detail")}})
    for case in notice_cases:
        events.append({"at": case.get("opened_at"), "kind": "case_opened", "case_id": case["case_id"],
                       "reason": case.get("reason"), "due_at": case.get("due_at")})
    for action in notice.get("human_actions", []):
        events.append({"at": action.get("at"), "kind": "human_action",
                       **{k: action.get(k) for k in ("case_id", "decision", "note", "by", "corrected")}})
    if notice.get("delivered_at"):
        events.append({"at": notice["delivered_at"], "kind": "delivered"})
    return sorted(events, key=lambda e: str(e.get("at") or ""))


def case_view(case_id: str, *, cases: ReviewCases, ledger: Ledger, borrowers: Any, clock=utc_now) -> dict[str, Any]:
    """One case: its own fields, the borrower's masked contacts and their health, and every notice of its loan to
    that borrower as a timeline (status change, attempts, receipts, deadlines, cases, earlier human actions)."""
    case = cases.get(case_id)
    if case is None:
        raise CaseNotOpen(f"case {case_id} does not exist")
    now = iso(clock())
    shown = {k: case.get(k) for k in _CASE_FIELDS if case.get(k) is not None}
    shown |= {"category": category(case.get("reason")).value,
              "overdue": case["state"] == CaseState.OPEN.value and str(case.get("due_at", "")) <= now,
              "resolving": (case.get("pending") or {}).get("decision")}
    try:
        borrower = borrowers.get(str(case.get("borrower_id", "")))
        contact = {"borrower_id": borrower.borrower_id, "locale": borrower.locale.value,
                   "contacts": _contacts(borrower)}
    except BorrowerNotFound:
        contact = None
    notices = []
    for notice in ledger.by_loan(str(case.get("loan_id", ""))):
        if notice.get("borrower_id") != case.get("borrower_id"):
            continue  # a report about someone else's loan (a typo, or a probe) shows that loan to no one
        numbers = range(1, int(notice.get("review_cases", 0)) + 1)
        notice_cases = [c for c in (cases.get(f"{notice['notification_id']}-case{n}") for n in numbers) if c]
        notices.append({
            **{k: notice.get(k) for k in ("notification_id", "status", "version", "state", "reason",
                                          "status_reason", "delivered_at", "created_at")},
            "this_case": notice["notification_id"] == case.get("notification_id"),
            "timeline": _timeline(notice, notice_cases),
        })
    return plain({"now": now, "case": shown, "borrower": contact, "notices": notices})


def take(case_id: str, *, by: str, cases: ReviewCases) -> dict[str, Any]:
    """Take the case (a conditional write): CaseTaken names who holds it when it is someone else."""
    case = cases.take(case_id, by)
    return {"case_id": case["case_id"], "assignee": case["assignee"], "assigned_at": case.get("assigned_at")}


class ConsoleDecision(BaseModel):
    """A decision as the console's form sends it."""

    model_config = ConfigDict(extra="forbid")

    case_id: str = Field(min_length=1, max_length=300)
    decision: Decision
    note: str = Field(min_length=1, max_length=2000)
    corrected: list[Literal["phone", "email"]] = Field(default_factory=list, max_length=2)

    @field_validator("note")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a note is required")
        return value.strip()

    @model_validator(mode="after")
    def _contact_named(self) -> ConsoleDecision:
        if self.decision is Decision.CONTACT_CORRECTED and not self.corrected:
            raise ValueError("contact_corrected needs the corrected contact: phone and/or email")
        if self.decision is not Decision.CONTACT_CORRECTED and self.corrected:
            raise ValueError("corrected is only for contact_corrected")
        return self


def decide(request: ConsoleDecision, *, by: str, cases: ReviewCases, ledger: Ledger, contacts: Any,
           callbacks: Any, executions: Any, clock=utc_now) -> dict[str, Any]:
    """Resolve a case the caller holds, through the same function as the ops command (`resolve_case`).

    A case held by someone else raises CaseTaken; a case nobody holds is taken first (same conditional write)."""
    case = cases.get(request.case_id)
    if case is None:
        raise CaseNotOpen(f"case {request.case_id} does not exist")
    if case["state"] == CaseState.OPEN.value:
        if case.get("assignee") and case["assignee"] != by:
            raise CaseTaken(request.case_id, str(case["assignee"]))
        if not case.get("assignee"):
            cases.take(request.case_id, by)
    return resolve_case(request.case_id, decision=request.decision, note=request.note, by=by,
                        corrected=[_CORRECTED[c] for c in request.corrected], cases=cases, ledger=ledger,
                        contacts=contacts, callbacks=callbacks, executions=executions, clock=clock)
