"""Human review: a notice no channel could deliver becomes a case a person owns, with a deadline.

The execution waits on the case's task token. Ops resolve it (`python -m loan_notify_ops cases resolve`) with
one of three decisions; the note stays in the case and the ledger, never in the execution's history.

Every effect here happens once and survives a partial failure, because each is guarded by a record a retry reads:
- opening a case: the case id derives from the execution's wait (`Ledger.count_review` with a wait key), so a retried
  step finds the case it wrote, re-arms its task token and publishes the alert if that had not gone out (`alerts`
  counts published alerts; 0 means "still to send", which the watchdog also picks up);
- resolving: the decision is first stored on the OPEN case as `pending`; the ledger action (once per case), the
  resume (or, when nobody waits any more, a fresh execution) follow, and only then is the case RESOLVED. A retry of
  the same decision finishes the work; a different decision on a case being resolved is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from loan_notify.alerts import resolve_command, subject_line
from loan_notify.clock import iso, utc_now
from loan_notify.errors import LoanNotifyError, conditional_check_failed, put_if_absent
from loan_notify.ledger import FINAL_STATES, Ledger, query_all
from loan_notify.models import NoticeRef, ReviewRequest
from loan_notify.vocabulary import Channel, DeliveryStatus, NoticeState

BY_LOAN_INDEX = "ByLoan"
OPEN_INDEX = "ByState"
SYSTEM = "loan-notify"  # `resolved_by` of the cases the system closes itself
MAX_EXECUTION_NAME = 80


class Decision(StrEnum):
    REACHED_BY_PHONE = "reached_by_phone"  # a person told the borrower: the notice is delivered
    CONTACT_CORRECTED = "contact_corrected"  # the borrower's contact was fixed: send again, normal path
    CLOSED = "closed"  # closed with a reason (e.g. loan withdrawn, borrower unreachable after N tries)


# What the system answers a waiting execution on its own (the state machine routes them to a success end).
DELIVERED_MEANWHILE = "delivered"  # a receipt confirmed the notice after all
SETTLED_MEANWHILE = "settled"  # the notice reached another final state (superseded, ...) before a case was needed


class CaseState(StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class CaseNotOpen(Exception):
    pass


class CaseTaken(Exception):
    """Another person has taken this case: `assignee` says who."""

    def __init__(self, case_id: str, assignee: str) -> None:
        super().__init__(f"case {case_id} is taken by {assignee}")
        self.case_id = case_id
        self.assignee = assignee


class DecisionConflict(Exception):
    """Another decision is being applied to this case: finish that one (run it again) rather than contradict it."""


class ReviewAlertNotSent(LoanNotifyError):
    """The case is written but its alert did not go out: the step is retried (the case is found, not reopened)."""

    reason = "review_alert_not_sent"


class ReviewStep(ReviewRequest):
    """The review step's input, with the wait it belongs to: the execution and the instant it entered the step."""

    execution_name: str | None = None
    entered_at: str | None = None

    @property
    def wait_key(self) -> str | None:
        return f"{self.execution_name}@{self.entered_at}" if self.execution_name and self.entered_at else None


class ReviewCases:
    def __init__(self, table: Any, clock=utc_now) -> None:
        self._table = table
        self._clock = clock

    def open(self, ref: NoticeRef, *, number: int, reason: str, task_token: str, answer_within_s: int,
             execution_name: str | None = None) -> dict[str, Any]:
        """Write case `number` of the notice; if it exists already (a retried step), re-arm its task token."""
        now = self._clock()
        case = {
            "case_id": f"{ref.notification_id}-case{number}", "notification_id": ref.notification_id,
            "loan_id": ref.loan_id, "borrower_id": ref.borrower_id, "status": ref.status.value,
            "reason": reason, "state": CaseState.OPEN.value, "opened_at": iso(now),
            "due_at": iso(now + timedelta(seconds=answer_within_s)), "answer_within_s": answer_within_s,
            "alerts": 0, "task_token": task_token,
        }
        if execution_name:
            case["execution_name"] = execution_name
        if put_if_absent(self._table, case, "case_id"):
            return case
        rearmed = self.rearm(case["case_id"], task_token, even_if_deciding=True)  # the same wait, retried
        if rearmed is not None:
            return rearmed
        existing = self.get(case["case_id"])
        assert existing is not None
        return existing  # resolved already: the caller answers the new token with its decision

    def rearm(self, case_id: str, task_token: str, *, even_if_deciding: bool = False) -> dict[str, Any] | None:
        """Give an OPEN case the token its execution now waits on; None otherwise (nothing written). Unless
        `even_if_deciding` (a retry of the same wait), not while a decision is pending: that case is being closed,
        and its resume belongs to the wait it answers."""
        condition = "#s = :open" if even_if_deciding else "#s = :open AND attribute_not_exists(pending)"
        try:
            return self._table.update_item(
                Key={"case_id": case_id}, UpdateExpression="SET task_token = :token", ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":token": task_token, ":open": CaseState.OPEN.value},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
        return None

    def put(self, case: dict[str, Any]) -> None:
        self._table.put_item(Item=case, ConditionExpression="attribute_not_exists(case_id)")

    def get(self, case_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"case_id": case_id}, ConsistentRead=True).get("Item")

    def open_cases(self) -> list[dict[str, Any]]:
        items = query_all(self._table, IndexName=OPEN_INDEX, KeyConditionExpression=Key("state").eq("OPEN"))
        return sorted(items, key=lambda c: c["opened_at"])

    def take(self, case_id: str, by: str) -> dict[str, Any]:
        """Assign an open case to `by` in one conditional write: taking a case you hold already is a no-op, taking
        one someone else holds raises CaseTaken (naming them), a missing or resolved case raises CaseNotOpen."""
        try:
            return self._table.update_item(
                Key={"case_id": case_id},
                UpdateExpression="SET assignee = :by, assigned_at = if_not_exists(assigned_at, :now)",
                ConditionExpression="#s = :open AND (attribute_not_exists(assignee) OR assignee = :by)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":by": by, ":now": iso(self._clock()), ":open": CaseState.OPEN.value},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
        case = self.get(case_id)
        if case is None or case["state"] != CaseState.OPEN.value:
            raise CaseNotOpen(f"case {case_id} is not open")
        raise CaseTaken(case_id, str(case.get("assignee")))

    def by_loan(self, loan_id: str) -> list[dict[str, Any]]:
        """Every case of a loan, oldest first: notices' review cases and the borrower's reports."""
        items = query_all(self._table, IndexName=BY_LOAN_INDEX, KeyConditionExpression=Key("loan_id").eq(loan_id))
        return sorted(items, key=lambda c: c["opened_at"])

    def alerted(self, case_id: str) -> dict[str, Any] | None:
        """Count one published alert; None if the case was resolved meanwhile (nothing written)."""
        try:
            return self._table.update_item(
                Key={"case_id": case_id}, UpdateExpression="SET last_alert_at = :now ADD alerts :one",
                ConditionExpression="#s = :open", ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":now": iso(self._clock()), ":one": 1, ":open": CaseState.OPEN.value},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if conditional_check_failed(err):
                return None
            raise

    def begin_resolve(self, case_id: str, action: dict[str, Any]) -> dict[str, Any]:
        """Store the decision on the OPEN case as `pending` (the first try's action wins on a retry).

        Returns the case; a RESOLVED case with the same decision is returned as is (the work is done)."""
        try:
            return self._table.update_item(
                Key={"case_id": case_id}, UpdateExpression="SET pending = if_not_exists(pending, :action)",
                ConditionExpression="#s = :open AND (attribute_not_exists(pending) OR pending.decision = :d)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":action": action, ":d": action["decision"],
                                           ":open": CaseState.OPEN.value},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
        case = self.get(case_id)
        if case is None:
            raise CaseNotOpen(f"case {case_id} does not exist")
        if case["state"] == CaseState.OPEN.value:
            pending = case.get("pending", {})
            raise DecisionConflict(f"case {case_id} is being resolved as {pending.get('decision')} by "
                                   f"{pending.get('by')}: run that decision again to finish it")
        if case.get("decision") != action["decision"]:
            raise CaseNotOpen(f"case {case_id} is not open (resolved as {case.get('decision')})")
        return case

    def progress(self, case_id: str, step: str) -> None:
        """Note a finished step of a pending resolve (e.g. "resumed"), so a retry does not repeat it."""
        self._table.update_item(Key={"case_id": case_id}, UpdateExpression="SET pending.#step = :true",
                                ConditionExpression="attribute_exists(pending)",
                                ExpressionAttributeNames={"#step": step}, ExpressionAttributeValues={":true": True})

    def finish_resolve(self, case_id: str, action: dict[str, Any], outcome: str) -> dict[str, Any]:
        """RESOLVED, with the decision, its note and what was done: written last, once the work is done."""
        try:
            return self._table.update_item(
                Key={"case_id": case_id},
                UpdateExpression="SET #s = :resolved, decision = :d, note = :n, resolved_by = :by, resolved_at = :at, "
                                 "outcome = :outcome REMOVE pending",
                ConditionExpression="#s = :open AND pending.decision = :d",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":resolved": CaseState.RESOLVED.value, ":open": CaseState.OPEN.value,
                                           ":d": action["decision"], ":n": action["note"], ":by": action["by"],
                                           ":at": iso(self._clock()), ":outcome": outcome},
                ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as err:
            if not conditional_check_failed(err):
                raise
        case = self.get(case_id)
        if case and case["state"] == CaseState.RESOLVED.value and case.get("decision") == action["decision"]:
            return case  # a concurrent retry finished it
        raise CaseNotOpen(f"case {case_id} is not being resolved as {action['decision']}")


def alert_message(case: dict[str, Any], *, overdue: bool = False) -> tuple[str, str]:
    """Subject and body for the ops topic: ids, reason and the command to run. No personal data; every value is
    escaped for a terminal (JSON escapes control characters) and the command quotes the case id."""
    subject = ("OVERDUE review case " if overdue else "Review case ") + f"{case['loan_id']} {case['status']}"
    body = json.dumps({
        "case_id": case["case_id"], "loan_id": case["loan_id"], "status": case["status"],
        "reason": case["reason"], "opened_at": case["opened_at"], "due_at": case["due_at"],
        "alerts": int(case.get("alerts", 0)) + 1,
        "resolve_with": resolve_command(case["case_id"]),
    }, indent=2)
    return subject_line(subject), body


_CONFIRMING = {s.value for s in DeliveryStatus if s.confirms}


def _confirmed_at(notice: dict[str, Any]) -> str | None:
    """When a receipt (or the app) confirmed the notice, if one did: the state says so, or an attempt does."""
    if notice.get("state") == NoticeState.DELIVERED.value:
        return str(notice.get("delivered_at") or notice.get("updated_at") or "")
    for attempt in notice.get("attempts", []):
        if attempt.get("delivery_status") in _CONFIRMING:
            # receipts are kept on the attempt by kind ({"DELIVERED": {...}, "READ": {...}}), the first of each
            receipts = sorted((r for r in (attempt.get("receipts") or {}).values()
                               if isinstance(r, dict) and r.get("status") in _CONFIRMING),
                              key=lambda r: str(r.get("at", "")))
            return str(receipts[0].get("at")) if receipts else str(attempt.get("finished_at", ""))
    return None


def _settled_answer(notice: dict[str, Any]) -> dict[str, Any] | None:
    """The answer for a waiting execution when the notice needs no person (None: it does)."""
    if _confirmed_at(notice) is not None:
        return {"case_id": None, "decision": DELIVERED_MEANWHILE, "delivered": True}
    if notice.get("state") in FINAL_STATES:
        return {"case_id": None, "decision": SETTLED_MEANWHILE, "state": notice["state"]}
    return None


def open_case(ref: ReviewStep, *, reason: str, task_token: str, ledger: Ledger, cases: ReviewCases,
              alerts: Any, callbacks: Any, answer_within_s: int) -> dict[str, Any]:
    """Open (or, on a retried step, find and re-arm) the case for this wait, mark the notice, alert ops.

    A notice confirmed or otherwise settled meanwhile gets no case: the execution is answered at once.
    Raises ReviewAlertNotSent when the alert could not be published: the retried step publishes it."""
    notice = ledger.get(ref.notification_id) or {}
    answer = _settled_answer(notice)
    if answer is not None:
        callbacks.success(task_token, answer)
        return answer
    open_already = notice.get("case_id") if notice.get("state") == NoticeState.NEEDS_REVIEW.value else None
    if open_already and ref.execution_name:
        # The same execution waits for a person again on a notice whose case is still open: a redrive re-entered
        # this step (a new wait, so a new case number). It is the same obligation: the open case takes the new
        # token, so the person's decision resumes the execution, and no second case or alert is made.
        case = cases.get(str(open_already))
        if case and case.get("execution_name") == ref.execution_name and case["state"] == CaseState.OPEN.value \
                and not case.get("pending"):
            rearmed = cases.rearm(case["case_id"], task_token)
            if rearmed is not None:
                return _alerted_once(rearmed, alerts=alerts, cases=cases)  # a retry finishes an alert not sent
            # resolved, or being resolved, meanwhile: this wait is a new one (a resend after a corrected contact
            # that failed again, say), and gets a case of its own below
    number = ledger.count_review(ref.notification_id, ref.wait_key)
    case = cases.open(ref, number=number, reason=reason, task_token=task_token, answer_within_s=answer_within_s,
                      execution_name=ref.execution_name)
    if case["state"] != CaseState.OPEN.value:  # resolved before this retry ran: hand its decision to the new token
        callbacks.success(task_token, {"decision": case["decision"], "case_id": case["case_id"]})
        return {"case_id": case["case_id"], "decision": case["decision"]}
    if not ledger.mark_needs_review(ref.notification_id, case["case_id"], reason):
        closed = close_case_if_settled(ref.notification_id, case_id=case["case_id"], ledger=ledger, cases=cases,
                                       callbacks=callbacks)
        return {"case_id": case["case_id"], "closed": closed is not None}
    return _alerted_once(case, alerts=alerts, cases=cases)


def _alerted_once(case: dict[str, Any], *, alerts: Any, cases: ReviewCases) -> dict[str, Any]:
    """Publish the open case's alert unless one went out (`alerts` counts them); ReviewAlertNotSent if it fails."""
    if int(case.get("alerts", 0)) == 0:
        subject, body = alert_message(case)
        try:
            alerts.publish(subject, body)
        except Exception as err:
            raise ReviewAlertNotSent(f"case {case['case_id']} is open but its alert was not published: {err}"
                                     ) from err
        cases.alerted(case["case_id"])
    return {"case_id": case["case_id"], "due_at": case["due_at"]}


def close_case_if_delivered(notification_id: str, *, ledger: Ledger, cases: ReviewCases, callbacks: Any
                            ) -> str | None:
    """A receipt confirmed a notice whose case is open: the notice becomes DELIVERED (forward only), the case is
    resolved by the system with a note, and the waiting execution ends as delivered. Idempotent; returns the id of
    the case it closed, or None (no open case, or not confirmed, or a person is resolving it right now)."""
    if not ledger.case_id(notification_id):
        return None  # no case was ever opened for it (the usual case: one attribute read, nothing more)
    notice = ledger.get(notification_id)
    if not notice or _confirmed_at(notice) is None or not notice.get("case_id"):
        return None  # not confirmed
    return close_case_if_settled(notification_id, case_id=notice.get("case_id"), ledger=ledger, cases=cases,
                                 callbacks=callbacks)


def close_case_if_settled(notification_id: str, *, case_id: str | None, ledger: Ledger, cases: ReviewCases,
                          callbacks: Any) -> str | None:
    notice = ledger.get(notification_id) or {}
    answer = _settled_answer(notice)
    case = cases.get(case_id) if case_id else None
    if answer is None or case is None or case["state"] != CaseState.OPEN.value:
        return None
    confirmed = _confirmed_at(notice)
    if confirmed is not None and notice.get("state") != NoticeState.DELIVERED.value:
        ledger.settle_delivered(notification_id, confirmed)
    note = ("a receipt confirmed the notice after the case opened" if confirmed is not None
            else f"the notice became {notice.get('state')} before anyone decided")
    action = {"case_id": case["case_id"], "decision": answer["decision"], "note": note, "by": SYSTEM,
              "at": iso(utc_now())}
    try:
        case = cases.begin_resolve(case["case_id"], action)
    except (DecisionConflict, CaseNotOpen):
        return None  # a person's decision is being applied: it wins
    if case["state"] == CaseState.OPEN.value:
        if not case["pending"].get("resumed"):
            callbacks.success(case["task_token"], {"decision": answer["decision"], "case_id": case["case_id"]})
        cases.finish_resolve(case["case_id"], case["pending"], "closed by the system: " + note)
    return str(case["case_id"])


def realert_overdue(*, cases: ReviewCases, alerts: Any, clock=utc_now, on_error: Any = None) -> list[str]:
    """Every run: alert again each open case past its deadline, and each whose first alert never went out.

    Publish first, then count it: a failed publish leaves the case due for the next run. A case resolved meanwhile
    is skipped; one failing case does not stop the others (`on_error(case_id, err)` hears of it)."""
    now = iso(clock())
    realerted = []
    for listed in cases.open_cases():
        if listed["due_at"] > now and int(listed.get("alerts", 0)) > 0:
            continue
        try:
            case = cases.get(listed["case_id"])
            if case is None or case["state"] != CaseState.OPEN.value:
                continue
            subject, body = alert_message(case, overdue=case["due_at"] <= now)
            alerts.publish(subject, body)
            if cases.alerted(case["case_id"]) is not None:
                realerted.append(case["case_id"])
        except Exception as err:  # noqa: BLE001 - one case's failure must not hide the others
            if on_error is None:
                raise
            on_error(listed["case_id"], err)
    return realerted


_STATE_AFTER = {
    Decision.REACHED_BY_PHONE.value: NoticeState.DELIVERED_BY_PERSON,
    Decision.CLOSED.value: NoticeState.CLOSED,
    Decision.CONTACT_CORRECTED.value: None,  # stays NEEDS_REVIEW until the resend settles it
}


def resend_execution_name(execution_name: str, round_: int) -> str:
    """The fresh execution of resend round N: "<original name>-r<N>", hashed to fit Step Functions' 80 characters."""
    suffix = f"-r{round_}"
    if len(execution_name) + len(suffix) <= MAX_EXECUTION_NAME:
        return execution_name + suffix
    digest = hashlib.sha256(execution_name.encode()).hexdigest()[:8]
    return f"{execution_name[:MAX_EXECUTION_NAME - len(suffix) - 9]}-{digest}{suffix}"


def resolve_case(case_id: str, *, decision: Decision, note: str, by: str, corrected: list[Channel],
                 cases: ReviewCases, ledger: Ledger, contacts: Any, callbacks: Any, executions: Any,
                 clock=utc_now) -> dict[str, Any]:
    """A person's decision on a case: recorded with its note in the case and the ledger, then handed to the
    waiting execution as the decision alone (ids, no note, no personal data).

    When no execution waits any more (the 14-day timeout, or the case's alert failed and the execution ended),
    the decision still takes effect: contact_corrected starts a fresh execution for the notice (resend round N,
    `resend_execution_name`), the other decisions are recorded in the ledger. Safe to run again: a retry of the
    same decision finishes what the first try left; `outcome` says what was done."""
    if decision is Decision.CONTACT_CORRECTED and not corrected:
        raise ValueError("contact_corrected needs the corrected channel(s): phone and/or email")
    action: dict[str, Any] = {"case_id": case_id, "decision": decision.value, "note": note, "by": by,
                              "at": iso(clock())}
    if corrected:
        action["corrected"] = [c.value for c in corrected]
    case = cases.begin_resolve(case_id, action)
    if case["state"] == CaseState.RESOLVED.value:
        return _result(case, already=True)
    action = {k: v for k, v in case["pending"].items() if k != "resumed"}  # the first try's decision and note
    for channel in action.get("corrected", []):
        contacts.reset(case["borrower_id"], Channel(channel))
    outcome = "recorded"
    if case.get("notification_id"):  # a borrower's report is not tied to one waiting execution
        outcome = _apply(case, action, ledger=ledger, cases=cases, callbacks=callbacks, executions=executions)
    return _result(cases.finish_resolve(case_id, action, outcome))


def _apply(case: dict[str, Any], action: dict[str, Any], *, ledger: Ledger, cases: ReviewCases, callbacks: Any,
           executions: Any) -> str:
    notification_id = case["notification_id"]
    decision = action["decision"]
    round_ = ledger.record_human_action(notification_id, action, _STATE_AFTER[decision])
    if case["pending"].get("resumed") or callbacks.success(case["task_token"],
                                                          {"decision": decision, "case_id": case["case_id"]}):
        cases.progress(case["case_id"], "resumed")
        return "execution resumed"
    # Nobody waits on the token. Resumed by an earlier try whose record was lost? Then the execution moved on.
    waited = case.get("execution_name")
    if waited and executions.status(waited) in ("RUNNING", "SUCCEEDED"):
        return "execution resumed"
    if decision != Decision.CONTACT_CORRECTED.value:
        return f"recorded as {_STATE_AFTER[decision]}; no execution was waiting"
    notice = ledger.get(notification_id) or {}
    if notice.get("state") in FINAL_STATES:
        return f"nothing resent: the notice is already {notice['state']}"
    name = resend_execution_name(str(notice.get("execution_name") or notification_id), int(round_ or 1))
    ref = NoticeRef(notification_id=notification_id, loan_id=notice["loan_id"], borrower_id=notice["borrower_id"],
                    status=notice["status"], version=int(notice["version"]))
    started = executions(name, json.dumps(ref.model_dump(mode="json"), separators=(",", ":")))
    return f"resent: {'started' if started else 'already started'} execution {name}"


def _result(case: dict[str, Any], *, already: bool = False) -> dict[str, Any]:
    outcome = str(case.get("outcome", ""))
    return {"case_id": case["case_id"], "notification_id": case.get("notification_id"),
            "decision": case.get("decision"), "outcome": outcome,
            "execution_resumed": outcome == "execution resumed",
            "already_resolved": already}


REPORT_ROUNDS_MAX = 1000  # resolved reports of one borrower about one loan, before the answer is "too many"
_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


def report_case_id(borrower_id: str, loan_id: str, round_: int) -> str:
    """Round N of a borrower's report about a loan: one case open at a time (a new round once it is resolved)."""
    digest = hashlib.sha256(f"{borrower_id}\x1f{loan_id}".encode()).hexdigest()[:12]
    return f"report-{_SLUG.sub('_', loan_id)[:40]}-{digest}-{round_}"


def _report_answer(case: dict[str, Any], *, repeated: bool) -> dict[str, Any]:
    return {"case_id": case["case_id"], "due_at": case["due_at"],
            "notices_on_record": len(case.get("history") or []), "repeated": repeated,
            "next": "A member of our team will look at this loan's notices and contact you before "
                    f"{case['due_at']} (UTC)."}


def report_not_notified(borrower_id: str, loan_id: str, *, ledger: Ledger, cases: ReviewCases, alerts: Any,
                        limits: Any, answer_within_s: int, clock=utc_now) -> tuple[dict[str, Any], bool]:
    """"I was never notified about loan X": a case for a person, with the borrower's notices of that loan attached.

    Idempotent: while the borrower's case about this loan is open, a repeat answers that case (created False); a
    new case counts against the borrower's daily report limit (LimitExceeded). A loan that is unknown and a loan of
    another borrower answer alike (no notice on record for this borrower): the API is no existence oracle.
    Returns (answer, created)."""
    round_ = 1
    while True:
        case_id = report_case_id(borrower_id, loan_id, round_)
        existing = cases.get(case_id)
        if existing is None:
            break
        if existing["state"] == CaseState.OPEN.value:
            return _report_answer(existing, repeated=True), False
        round_ += 1
        if round_ > REPORT_ROUNDS_MAX:
            raise ValueError("loan_id: too many reports about this loan")
    limits.take_report(borrower_id, case_id)
    notices = [n for n in ledger.by_loan(loan_id) if n.get("borrower_id") == borrower_id]
    now = clock()
    history = [{"notification_id": n["notification_id"], "status": n.get("status"), "version": n.get("version"),
                "state": n.get("state"), "reason": n.get("reason"),
                "attempts": [{k: a.get(k) for k in ("channel", "provider", "result", "delivery_status",
                                                    "started_at")} for a in n.get("attempts", [])]}
               for n in notices]
    case = {
        "case_id": case_id, "kind": "borrower_report", "round": round_,
        "loan_id": loan_id, "borrower_id": borrower_id, "status": "-",
        "reason": "borrower_reports_not_notified" if history else "borrower_reports_not_notified_no_notice_on_record",
        "state": CaseState.OPEN.value, "opened_at": iso(now),
        "due_at": iso(now + timedelta(seconds=answer_within_s)), "answer_within_s": answer_within_s, "alerts": 0,
        "history": json.loads(json.dumps(history, default=str)),
    }
    try:
        cases.put(case)
    except ClientError as err:
        if not conditional_check_failed(err):
            raise
        existing = cases.get(case_id)  # a concurrent repeat opened it first
        assert existing is not None
        return _report_answer(existing, repeated=True), False
    subject, body = alert_message(case)
    alerts.publish(subject, body)  # if this fails, the case is written with no alert: the watchdog sends it
    cases.alerted(case["case_id"])
    return _report_answer(case, repeated=False), True


def oldest_undelivered_critical_age(*, ledger: Ledger, clock=utc_now) -> tuple[float, str | None]:
    """Seconds since the oldest critical notice (APPROVED, REJECTED, OVERDUE) that is not yet in a final state was
    recorded, and its id; (0, None) when every critical notice is settled. The service level: none over 15 min."""
    oldest = ledger.oldest_undelivered_critical()
    if oldest is None:
        return 0.0, None
    created = datetime.fromisoformat(str(oldest["created_at"]).replace("Z", "+00:00"))
    return max(0.0, (clock() - created).total_seconds()), str(oldest["notification_id"])


def case_counts(*, cases: ReviewCases, clock=utc_now) -> tuple[int, int]:
    """Open review cases, and how many of them are past their deadline (nobody answered in time)."""
    now = iso(clock())
    open_cases = cases.open_cases()
    return len(open_cases), sum(1 for case in open_cases if case["due_at"] <= now)
