"""Proof of notice: for one loan, everything that settles "was the borrower told?", as JSON or a table."""

from __future__ import annotations

from typing import Any

from loan_notify.clock import iso, utc_now

_ATTEMPT_FIELDS = ("attempt", "channel", "provider", "destination", "message_id", "started_at", "finished_at",
                   "result", "error", "delivery_status", "receipts", "sms_encoding", "sms_segments", "sms_country",
                   "sms_template_id")


def plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: integers for JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "as_integer_ratio") and not isinstance(value, bool | int | float):
        return int(value) if value == int(value) else float(value)
    return value


def _attempt(attempt: dict[str, Any]) -> dict[str, Any]:
    shown = {k: attempt.get(k) for k in _ATTEMPT_FIELDS if k in attempt}
    receipts = attempt.get("receipts")
    if isinstance(receipts, dict):  # kept once per kind of receipt: shown in the order they happened
        shown["receipts"] = sorted(receipts.values(), key=lambda r: (r.get("at", ""), r.get("received_at", "")))
    return shown


def export(loan_id: str, *, ledger: Any, cases: Any, clock=utc_now) -> dict[str, Any]:
    notices = []
    for item in ledger.by_loan(loan_id):
        case_ids = [f"{item['notification_id']}-case{n}" for n in range(1, int(item.get("review_cases", 0)) + 1)]
        review_cases = []
        for case_id in case_ids:
            case = cases.get(case_id)
            if case:
                review_cases.append({k: v for k, v in case.items() if k != "task_token"})
        notices.append(plain({
            "notification_id": item["notification_id"],
            "status_change": {k: item.get(k) for k in ("status", "version", "status_updated_at", "status_reason",
                                                        "amount", "currency")},
            "policy_version": item.get("policy_version"),
            "template": {"id": item.get("template_id"), "version": item.get("template_version")},
            "content_sha256": item.get("content_hash"),
            "plan": item.get("plan", []),
            "attempts": [_attempt(a) for a in item.get("attempts", [])],
            "human_actions": item.get("human_actions", []),
            "review_cases": review_cases,
            "outcome": {"state": item.get("state"), "reason": item.get("reason"),
                        "delivered_at": item.get("delivered_at")},
            "duplicate_deliveries": item.get("duplicate_deliveries", 0),
            "execution_name": item.get("execution_name"),
            "recorded": {"created_at": item.get("created_at"), "updated_at": item.get("updated_at")},
        }))
    return {"loan_id": loan_id, "generated_at": iso(clock()), "notices": notices}


def _sms_size(attempt: dict[str, Any]) -> str:
    """How a sent SMS went out: its encoding and the parts the carrier sent (and billed)."""
    if attempt.get("result") != "SENT" or not attempt.get("sms_segments"):
        return ""
    parts = int(attempt["sms_segments"])
    return f", {parts} {attempt.get('sms_encoding')} part{'s' if parts != 1 else ''}"


def as_table(evidence: dict[str, Any]) -> str:
    lines = [f"Proof of notice for loan {evidence['loan_id']} (generated {evidence['generated_at']})"]
    for notice in evidence["notices"]:
        change = notice["status_change"]
        outcome = notice["outcome"]
        lines += ["", f"* v{change['version']} {change['status']} (changed {change['status_updated_at']}) -> "
                      f"{outcome['state']}" + (f" ({outcome['reason']})" if outcome.get("reason") else ""),
                  f"  notice {notice['notification_id']}; policy {notice['policy_version']}; template "
                  f"{notice['template']['id']} v{notice['template']['version']}; sha256 {notice['content_sha256']}"]
        for a in notice["attempts"]:
            lines.append(f"  {a.get('started_at', '')}  #{a.get('attempt')} {a.get('channel')} via "
                         f"{a.get('provider')} to {a.get('destination', '-')}: {a.get('result')}"
                         + (f" ({a['error']})" if a.get("error") else "")
                         + (f", message {a['message_id']}" if a.get("message_id") else "")
                         + _sms_size(a))
            for r in a.get("receipts", []):  # the first receipt of each kind, oldest first
                lines.append(f"      receipt {r.get('at')}: {r.get('status')} ({r.get('source')}) "
                             f"{r.get('detail', '')}")
        for case in notice["review_cases"]:
            lines.append(f"  review case {case['case_id']}: opened {case['opened_at']} ({case['reason']}), "
                         f"{case['state']}" + (f" {case.get('decision')} by {case.get('resolved_by')} at "
                                               f"{case.get('resolved_at')}" if case.get("decision") else ""))
        for action in notice["human_actions"]:
            lines.append(f"  person {action.get('by')} at {action.get('at')}: {action.get('decision')} - "
                         f"{action.get('note')}")
    return "\n".join(lines)
