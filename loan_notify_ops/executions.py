"""Notice executions for on-call: what each one waits on and until when, its timeline, and redrive.

A notice's execution is named after its notification id (`loan_notify.models.execution_name`), so every command
takes the notice id people see in alerts, cases and the ledger.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from loan_notify.models import execution_name
from loan_notify_ops.stack import OpsError, Stack

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
# The state an execution is parked in -> what it waits on.
WAITS = {
    "Open a review case": "review",
    "Wait for the delivery receipt": "confirmation",
    "Wait for the send window": "window",
    "Wait for the borrower record": "window",
    "Queue the send": "queue",
}
_FAILED_EVENTS = ("TaskFailed", "LambdaFunctionFailed", "TaskTimedOut", "ExecutionFailed", "ExecutionTimedOut",
                  "ExecutionAborted", "FailStateEntered", "TaskSubmitFailed", "TaskStartFailed")
_DURATION = re.compile(r"(\d+)\s*([smhd])")


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1d`, `90s` (or combined: `1h30m`)."""
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise OpsError(f"not a duration: {text!r} (use e.g. 90s, 30m, 2h, 1d)")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    return sum((timedelta(**{unit[u]: int(n)}) for n, u in parts), timedelta())


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def console_link(region: str | None, execution_arn: str) -> str:
    region = region or "us-east-1"
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def _arn(stack: Stack, name: str) -> str:
    return stack.output("NotifyStateMachineArn").replace(":stateMachine:", ":execution:") + f":{name}"


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn, maxResults=1000)
    return [event for page in pages for event in page["events"]]


def _open_state(events: list[dict[str, Any]]) -> tuple[str, dict[str, Any], Any] | None:
    """The state the execution is in now: (name, its input, entered at), or None."""
    current = None
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered:
            try:
                data = json.loads(entered.get("input") or "{}")
            except ValueError:
                data = {}
            current = (entered["name"], data if isinstance(data, dict) else {}, event.get("timestamp"))
        elif exited and current and current[0] == exited["name"]:
            current = None
    return current


def _notice_id(events: list[dict[str, Any]], name: str) -> str:
    for event in events[:1]:
        details = event.get("executionStartedEventDetails") or {}
        try:
            return str(json.loads(details.get("input") or "{}").get("notification_id") or name)
        except ValueError:
            return name
    return name


def _until(wait: str, state_input: dict[str, Any], entered_at: Any, cases: dict[str, dict[str, Any]],
           notice_id: str) -> str | None:
    plan = state_input.get("plan") or {}
    if wait == "window":
        return plan.get("wait_until") or state_input.get("wait_until")
    if wait == "confirmation" and isinstance(entered_at, datetime) and plan.get("confirm_within") is not None:
        return _iso(entered_at + timedelta(seconds=float(plan["confirm_within"])))
    if wait == "review":
        case = cases.get(notice_id)
        return case.get("due_at") if case else None
    return None  # queued: sent as soon as the provider's pace allows


def _input_notice_id(sfn: Any, arn: str, name: str) -> str:
    try:
        return str(json.loads(sfn.describe_execution(executionArn=arn).get("input") or "{}").get("notification_id")
                   or name)
    except ValueError:
        return name


def list_executions(stack: Stack, *, status: str | None, older_than: timedelta | None,
                    waiting: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """The newest `limit` executions that match, oldest first. A running one's history says what it waits on; a
    finished one costs one DescribeExecution (its notice id is in its input)."""
    sfn = stack.client("stepfunctions")
    kwargs: dict[str, Any] = {"stateMachineArn": stack.output("NotifyStateMachineArn")}
    if waiting:
        status = "RUNNING"
    if status:
        kwargs["statusFilter"] = status
    now = datetime.now(timezone.utc)
    cases: dict[str, dict[str, Any]] | None = None
    rows = []
    for page in sfn.get_paginator("list_executions").paginate(**kwargs):
        for execution in page["executions"]:
            started = execution["startDate"]
            if older_than is not None and now - started < older_than:
                continue
            running = execution["status"] == "RUNNING"
            events = history(sfn, execution["executionArn"]) if running else []
            notice_id = _notice_id(events, execution["name"]) if running else \
                _input_notice_id(sfn, execution["executionArn"], execution["name"])
            row: dict[str, Any] = {
                "notice_id": notice_id, "execution": execution["name"],
                "status": execution["status"], "started_at": _iso(started),
                "stopped_at": _iso(execution.get("stopDate")), "state": None, "waiting": None, "until": None}
            if running:
                current = _open_state(events)
                if current:
                    name, state_input, entered_at = current
                    row["state"] = name
                    row["waiting"] = WAITS.get(name)
                    if row["waiting"] == "review" and cases is None:
                        from loan_notify.review import ReviewCases

                        cases = {c["notification_id"]: c for c in
                                 ReviewCases(stack.table("ReviewCasesTableName")).open_cases()
                                 if c.get("notification_id")}
                    if row["waiting"]:
                        row["until"] = _until(row["waiting"], state_input, entered_at, cases or {},
                                              row["notice_id"])
            if waiting and row["waiting"] != waiting:
                continue
            rows.append(row)
            if len(rows) >= limit:
                return sorted(rows, key=lambda r: r["started_at"] or "")
    return sorted(rows, key=lambda r: r["started_at"] or "")


def _ledger_item(stack: Stack, notice_id: str) -> dict[str, Any] | None:
    from loan_notify.ledger import Ledger

    return Ledger(stack.table("NotificationsTableName")).get(notice_id)


def _attempt_near(attempts: list[dict[str, Any]], at: str) -> dict[str, Any] | None:
    """The ledger attempt an execution event refers to: the last one that started at or before it."""
    before = [a for a in attempts if (a.get("started_at") or "") <= at]
    return before[-1] if before else (attempts[-1] if attempts else None)


def _attempt_cause(attempt: dict[str, Any] | None, notice: dict[str, Any]) -> str | None:
    if attempt:
        parts = [attempt.get("error"), attempt.get("delivery_status") not in (None, "SENT", "DELIVERED", "READ")
                 and f"receipt {attempt.get('delivery_status')}"]
        text = "; ".join(p for p in parts if p)
        if text:
            return f"{text} (from the ledger)"
    return f"{notice['reason']} (from the ledger)" if notice.get("reason") else None


def _notice_and_arn(stack: Stack, notice_id: str) -> tuple[dict[str, Any], str]:
    """The notice's ledger item ({} when the ledger has none) and its execution's ARN."""
    notice = _ledger_item(stack, notice_id) or {}
    return notice, _arn(stack, notice.get("execution_name") or execution_name(notice_id))


def show(stack: Stack, notice_id: str) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    notice, arn = _notice_and_arn(stack, notice_id)
    try:
        described = sfn.describe_execution(executionArn=arn)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            known = " (the ledger has it: see `evidence`)" if notice else ""
            raise OpsError(f"no execution for notice {notice_id}{known}") from None
        raise
    events = history(sfn, arn)
    attempts = list(notice.get("attempts") or [])
    timeline = []
    for event in events:
        at = _iso(event.get("timestamp")) or ""
        kind = event["type"]
        entered = event.get("stateEnteredEventDetails")
        row: dict[str, Any] = {"at": at, "event": kind}
        if entered:
            row["state"] = entered["name"]
        elif kind.endswith("StateExited"):
            continue  # the next entry says where it went
        elif kind in _FAILED_EVENTS or kind == "ExecutionRedriven":
            details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
            row["error"] = details.get("error")
            row["cause"] = details.get("cause")
        elif kind not in ("ExecutionStarted", "ExecutionSucceeded"):
            continue  # task scheduling and submission: noise in a timeline
        state = row.get("state", "")
        if state in ("Queue the send", "Wait for the delivery receipt") or "error" in row:
            attempt = _attempt_near(attempts, at)
            if attempt and state:
                row |= {"channel": attempt.get("channel"), "provider": attempt.get("provider"),
                        "result": attempt.get("result"), "delivery_status": attempt.get("delivery_status")}
            if "error" in row and not row.get("cause"):
                row["cause"] = _attempt_cause(attempt, notice)
        timeline.append(row)
    return {"notice_id": notice_id, "execution": arn.rsplit(":", 1)[-1], "execution_arn": arn,
            "status": described["status"],
            "started_at": _iso(described.get("startDate")), "stopped_at": _iso(described.get("stopDate")),
            "ledger_state": notice.get("state"), "ledger_reason": notice.get("reason"),
            "console": console_link(stack.region, arn), "timeline": timeline}


def redrive(stack: Stack, notice_id: str) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    notice, arn = _notice_and_arn(stack, notice_id)
    try:
        answer = sfn.redrive_execution(executionArn=arn)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code")
        if code == "ExecutionDoesNotExist":
            raise OpsError(f"no execution for notice {notice_id}") from None
        if code == "ExecutionNotRedrivable":
            raise OpsError(f"notice {notice_id}: {err.response['Error'].get('Message')}") from None
        raise
    return {"notice_id": notice_id, "execution": arn.rsplit(":", 1)[-1], "redriven_at": _iso(answer.get("redriveDate")),
            "console": console_link(stack.region, arn)}


def format_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no executions match"
    lines = []
    for row in rows:
        what = f"waits on {row['waiting']}" if row["waiting"] else (f"in {row['state']}" if row["state"] else "")
        until = f" until {row['until']}" if row["until"] else ""
        lines.append(f"{row['notice_id']}  {row['status']}  started {row['started_at']}  {what}{until}".rstrip())
    return "\n".join(lines)


def format_show(shown: dict[str, Any]) -> str:
    reason = f", {shown['ledger_reason']}" if shown["ledger_reason"] else ""
    lines = [f"notice {shown['notice_id']}  execution {shown['execution']}  {shown['status']}"
             f"  (ledger: {shown['ledger_state'] or '-'}{reason})",
             f"console: {shown['console']}"]
    for row in shown["timeline"]:
        detail = [row.get("state") or row["event"]]
        if row.get("channel"):
            detail.append(f"{row['channel']} via {row.get('provider') or '?'}: {row.get('result') or '-'}"
                          + (f", receipt {row['delivery_status']}" if row.get("delivery_status") else ""))
        if row.get("error") or row.get("cause"):
            detail.append(f"{row['event']} {row.get('error') or ''}: {row.get('cause') or '-'}")
        lines.append(f"  {row['at']}  " + "  ".join(detail))
    return "\n".join(lines)
