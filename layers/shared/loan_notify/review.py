"""Human review: a notice no channel could deliver becomes a case a person owns, with a deadline.

The execution waits on the case's task token. Ops resolve it (`python -m loan_notify_ops cases resolve`) with
one of three decisions; the note stays in the case and the ledger, never in the execution's history.
"""

from __future__ import annotations

import json
from datetime import timedelta
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from loan_notify.clock import iso, utc_now
from loan_notify.ledger import Ledger
from loan_notify.models import NoticeRef
from loan_notify.vocabulary import Channel, NoticeState

OPEN_INDEX = "ByState"


class Decision(StrEnum):
    REACHED_BY_PHONE = "reached_by_phone"  # a person told the borrower: the notice is delivered
    CONTACT_CORRECTED = "contact_corrected"  # the borrower's contact was fixed: send again, normal path
    CLOSED = "closed"  # closed with a reason (e.g. loan withdrawn, borrower unreachable after N tries)


class CaseState(StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class CaseNotOpen(Exception):
    pass


class ReviewCases:
    def __init__(self, table: Any, clock=utc_now) -> None:
        self._table = table
        self._clock = clock

    def open(self, ref: NoticeRef, *, number: int, reason: str, task_token: str, answer_within_s: int
             ) -> dict[str, Any]:
        now = self._clock()
        case = {
            "case_id": f"{ref.notification_id}-case{number}", "notification_id": ref.notification_id,
            "loan_id": ref.loan_id, "borrower_id": ref.borrower_id, "status": ref.status.value,
            "reason": reason, "state": CaseState.OPEN.value, "opened_at": iso(now),
            "due_at": iso(now + timedelta(seconds=answer_within_s)), "answer_within_s": answer_within_s,
            "alerts": 1, "task_token": task_token,
        }
        self._table.put_item(Item=case, ConditionExpression="attribute_not_exists(case_id)")
        return case

    def put(self, case: dict[str, Any]) -> None:
        self._table.put_item(Item=case, ConditionExpression="attribute_not_exists(case_id)")

    def get(self, case_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"case_id": case_id}, ConsistentRead=True).get("Item")

    def open_cases(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"IndexName": OPEN_INDEX, "KeyConditionExpression": Key("state").eq("OPEN")}
        while True:
            page = self._table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda c: c["opened_at"])
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def resolve(self, case_id: str, *, decision: Decision, note: str, by: str) -> dict[str, Any]:
        try:
            return self._table.update_item(
                Key={"case_id": case_id},
                UpdateExpression="SET #s = :resolved, decision = :d, note = :n, resolved_by = :by, resolved_at = :at",
                ConditionExpression="#s = :open",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":resolved": CaseState.RESOLVED.value, ":open": CaseState.OPEN.value,
                                           ":d": decision.value, ":n": note, ":by": by,
                                           ":at": iso(self._clock())},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise CaseNotOpen(f"case {case_id} is not open") from err
            raise

    def realert(self, case: dict[str, Any]) -> dict[str, Any]:
        due = self._clock() + timedelta(seconds=int(case.get("answer_within_s", 3600)))
        return self._table.update_item(
            Key={"case_id": case["case_id"]}, UpdateExpression="SET due_at = :due ADD alerts :one",
            ConditionExpression="#s = :open", ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":due": iso(due), ":one": 1, ":open": CaseState.OPEN.value},
            ReturnValues="ALL_NEW")["Attributes"]


def alert_message(case: dict[str, Any], *, overdue: bool = False) -> tuple[str, str]:
    """Subject and body for the ops topic: ids, reason and the command to run. No personal data."""
    subject = ("OVERDUE review case " if overdue else "Review case ") + f"{case['loan_id']} {case['status']}"
    body = json.dumps({
        "case_id": case["case_id"], "loan_id": case["loan_id"], "status": case["status"],
        "reason": case["reason"], "opened_at": case["opened_at"], "due_at": case["due_at"],
        "alerts": int(case.get("alerts", 1)),
        "resolve_with": f"python -m loan_notify_ops cases resolve {case['case_id']} "
                        "--decision reached_by_phone|contact_corrected|closed --note '...' --by <you>",
    }, indent=2)
    return subject[:100], body


def open_case(ref: NoticeRef, *, reason: str, task_token: str, ledger: Ledger, cases: ReviewCases,
              alerts: Any, answer_within_s: int) -> dict[str, Any]:
    number = ledger.count_review(ref.notification_id)
    case = cases.open(ref, number=number, reason=reason, task_token=task_token, answer_within_s=answer_within_s)
    ledger.mark_needs_review(ref.notification_id, case["case_id"], reason)
    subject, body = alert_message(case)
    alerts.publish(subject, body)
    return {"case_id": case["case_id"], "due_at": case["due_at"]}


def realert_overdue(*, cases: ReviewCases, alerts: Any, clock=utc_now) -> list[str]:
    now = iso(clock())
    realerted = []
    for case in cases.open_cases():
        if case["due_at"] <= now:
            updated = cases.realert(case)
            subject, body = alert_message(updated, overdue=True)
            alerts.publish(subject, body)
            realerted.append(case["case_id"])
    return realerted


_STATE_AFTER = {
    Decision.REACHED_BY_PHONE: NoticeState.DELIVERED_BY_PERSON,
    Decision.CLOSED: NoticeState.CLOSED,
    Decision.CONTACT_CORRECTED: None,  # stays NEEDS_REVIEW until the resend settles it
}


def resolve_case(case_id: str, *, decision: Decision, note: str, by: str, corrected: list[Channel],
                 cases: ReviewCases, ledger: Ledger, contacts: Any, callbacks: Any, clock=utc_now
                 ) -> dict[str, Any]:
    """A person's decision on a case: recorded with its note in the case and the ledger, then handed to the
    waiting execution as the decision alone (ids, no note, no personal data)."""
    if decision is Decision.CONTACT_CORRECTED and not corrected:
        raise ValueError("contact_corrected needs the corrected channel(s): phone and/or email")
    case = cases.resolve(case_id, decision=decision, note=note, by=by)
    action = {"case_id": case_id, "decision": decision.value, "note": note, "by": by, "at": iso(clock())}
    if corrected:
        action["corrected"] = [c.value for c in corrected]
        for channel in corrected:
            contacts.reset(case["borrower_id"], channel)
    resumed = False
    if case.get("notification_id"):  # a borrower's report is not tied to one waiting execution
        ledger.record_human_action(case["notification_id"], action, _STATE_AFTER[decision])
        resumed = callbacks.success(case["task_token"], {"decision": decision.value, "case_id": case_id})
    return {"case_id": case_id, "notification_id": case.get("notification_id"), "decision": decision.value,
            "execution_resumed": resumed}


class LoanNotYours(Exception):
    pass


def report_not_notified(borrower_id: str, loan_id: str, *, ledger: Ledger, cases: ReviewCases, alerts: Any,
                        answer_within_s: int, clock=utc_now) -> dict[str, Any]:
    """"I was never notified about loan X": a case for a person, with the loan's notice history attached."""
    notices = ledger.by_loan(loan_id)
    if notices and all(n.get("borrower_id") != borrower_id for n in notices):
        raise LoanNotYours(loan_id)
    now = clock()
    history = [{"notification_id": n["notification_id"], "status": n.get("status"), "version": n.get("version"),
                "state": n.get("state"), "reason": n.get("reason"),
                "attempts": [{k: a.get(k) for k in ("channel", "provider", "result", "delivery_status",
                                                    "started_at")} for a in n.get("attempts", [])]}
               for n in notices if n.get("borrower_id") == borrower_id]
    case = {
        "case_id": f"report-{loan_id[:40]}-{int(now.timestamp() * 1000)}", "kind": "borrower_report",
        "loan_id": loan_id, "borrower_id": borrower_id, "status": "-",
        "reason": "borrower_reports_not_notified" if history else "borrower_reports_not_notified_no_notice_on_record",
        "state": CaseState.OPEN.value, "opened_at": iso(now),
        "due_at": iso(now + timedelta(seconds=answer_within_s)), "answer_within_s": answer_within_s, "alerts": 1,
        "history": json.loads(json.dumps(history, default=str)),
    }
    cases.put(case)
    subject, body = alert_message(case)
    alerts.publish(subject, body)
    return {"case_id": case["case_id"], "due_at": case["due_at"], "notices_on_record": len(history),
            "next": "A member of our team will look at this loan's notices and contact you before "
                    f"{case['due_at']} (UTC)."}
