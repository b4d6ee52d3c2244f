"""Proof of notice: for one loan, everything that settles "was the borrower told?", as JSON or a table.

Per notice: the status change, what was decided and sent (policy, template, content hash), every attempt with how it
ended (an attempt whose confirmation deadline passed reads EXPIRED, never just SENT), receipts, review cases, human
actions, the current outcome with its reason, and the head of the notice's hash chain. A status change that was
rejected is shown as what was received and why it was refused. The borrower's "I was never notified" reports for
the loan come with it. `verify` recomputes every notice's hash chain (loan_notify.chain).
"""

from __future__ import annotations

from typing import Any

from loan_notify.chain import verify as verify_chain
from loan_notify.clock import iso, utc_now
from loan_notify.vocabulary import AttemptResult, DeliveryStatus, NoticeState

_ATTEMPT_FIELDS = ("attempt", "round", "channel", "provider", "destination", "message_id", "started_at",
                   "finished_at", "result", "error", "delivery_status", "expired_at", "deadline_s", "sms_encoding",
                   "sms_segments", "sms_country", "sms_template_id")
_CHANGE_FIELDS = ("status", "version", "status_updated_at", "status_reason", "amount", "currency")
_CASE_HIDDEN = frozenset({"task_token", "history", "pending"})

# What each state and reason means, in words, for the table (the JSON keeps the codes).
_OUTCOME_WORDS = {
    NoticeState.STARTED.value: "started, nothing sent yet",
    NoticeState.SENT.value: "sent, waiting for the delivery receipt",
    NoticeState.SENT_UNCONFIRMED.value: "sent through a provider that cannot confirm delivery",
    NoticeState.DELIVERED.value: "delivered",
    NoticeState.NEEDS_REVIEW.value: "with a person (review case open)",
    NoticeState.DELIVERED_BY_PERSON.value: "delivered by a person",
    NoticeState.CLOSED.value: "closed by a reviewer",
    NoticeState.REJECTED.value: "status change rejected, nothing sent",
    NoticeState.SUPERSEDED.value: "superseded by a newer status, not sent",
    NoticeState.OPTED_OUT.value: "not sent: the borrower opted out of non-critical notices",
    NoticeState.UNDELIVERED.value: "undelivered, and no review case could be opened",
}


def plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: integers for JSON; sets as sorted lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "as_integer_ratio") and not isinstance(value, bool | int | float):
        return int(value) if value == int(value) else float(value)
    return value


def attempt_outcome(attempt: dict[str, Any]) -> str:
    """How one attempt ended: its send result when it failed; else its receipt; else EXPIRED once its
    confirmation deadline passed; else SENT (still waiting, or through a provider that sends no receipts)."""
    result = attempt.get("result")
    if result != AttemptResult.SENT.value:
        return str(result)
    status = attempt.get("delivery_status")
    confirmed = status is not None and DeliveryStatus(status).confirms
    if attempt.get("expired_at"):
        return f"{status} after the deadline" if confirmed else "EXPIRED"
    if status and status != DeliveryStatus.SENT.value:
        return str(status)
    if attempt.get("confirms") is False:
        return "SENT, the provider cannot confirm delivery"
    return AttemptResult.SENT.value


def _attempt(attempt: dict[str, Any]) -> dict[str, Any]:
    shown = {k: attempt.get(k) for k in _ATTEMPT_FIELDS if attempt.get(k) is not None}
    shown["outcome"] = attempt_outcome(attempt)
    receipts = attempt.get("receipts")
    # kept once per kind of receipt: shown in the order they happened
    shown["receipts"] = sorted(receipts.values(), key=lambda r: (r.get("at", ""), r.get("received_at", ""))) \
        if isinstance(receipts, dict) else []
    return shown


def _case(case: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in case.items() if k not in _CASE_HIDDEN}


def _report(case: dict[str, Any]) -> dict[str, Any]:
    shown = {k: case.get(k) for k in ("case_id", "borrower_id", "opened_at", "due_at", "reason", "state", "decision",
                                      "resolved_by", "resolved_at", "note") if case.get(k) is not None}
    shown["notices_on_record"] = len(case.get("history", []))
    return shown


def _notice(item: dict[str, Any], cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    chain = {"entries": item.get("chain_seq", 0), "head": item.get("chain_head")}
    if item.get("state") == NoticeState.REJECTED.value:
        received = {k: item[k] for k in ("loan_id", "borrower_id", *_CHANGE_FIELDS) if item.get(k) is not None}
        return plain({"notification_id": item["notification_id"], "rejected": True, "received": received,
                       "outcome": {"state": item["state"], "reason": item.get("reason"), "detail": item.get("detail")},
                       "recorded": {"created_at": item.get("created_at")}, "chain": chain})
    review_cases = [_case(cases[f"{item['notification_id']}-case{n}"])
                    for n in range(1, int(item.get("review_cases", 0)) + 1)
                    if f"{item['notification_id']}-case{n}" in cases]
    return plain({
        "notification_id": item["notification_id"],
        "status_change": {k: item[k] for k in _CHANGE_FIELDS if item.get(k) is not None},
        "policy_version": item.get("policy_version"),
        "template": {"id": item.get("template_id"), "version": item.get("template_version")},
        "content_sha256": item.get("content_hash"),
        "plan": item.get("plan", []),
        "attempts": [_attempt(a) for a in item.get("attempts", [])],
        "human_actions": item.get("human_actions", []),
        "review_cases": review_cases,
        "outcome": {k: v for k, v in (("state", item.get("state")), ("reason", item.get("reason")),
                                      ("delivered_at", item.get("delivered_at"))) if v is not None},
        "duplicate_deliveries": item.get("duplicate_deliveries", 0),
        "execution_name": item.get("execution_name"),
        "recorded": {"created_at": item.get("created_at"), "updated_at": item.get("updated_at")},
        "chain": chain,
    })


def export(loan_id: str, *, ledger: Any, cases: Any, clock=utc_now) -> dict[str, Any]:
    loan_cases = {c["case_id"]: c for c in cases.by_loan(loan_id)}
    items = ledger.by_loan(loan_id)
    notices = [_notice(item, loan_cases) for item in items]
    # the loan's own borrower's reports: one filed by someone else about this loan id (a typo, a probe) is not
    # evidence about what this borrower was told. A loan with no notice on record names no borrower: every report
    # about it is kept (that no notice exists is what such a report is about)
    owners = {item["borrower_id"] for item in items if item.get("borrower_id")}
    reports = [plain(_report(c)) for c in loan_cases.values()
               if c.get("kind") == "borrower_report" and (not owners or c.get("borrower_id") in owners)]
    return {"loan_id": loan_id, "generated_at": iso(clock()), "notices": notices, "borrower_reports": reports}


def verify(loan_id: str, *, ledger: Any, archives: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Recompute the hash chain of every notice of the loan: {notices: [{notification_id, entries, problems}]}.

    `archives` (loan_notify.archive.archived_heads) anchor the chains: each head an archived export recorded must
    still be the hash of that entry, so a chain rewritten end to end after the export is found too."""
    items = {item["notification_id"]: item for item in ledger.by_loan(loan_id)}
    results = {nid: {"notification_id": nid, "entries": int(item.get("chain_seq", 0)), "head": item.get("chain_head"),
                     "problems": [str(p) for p in verify_chain(item)]} for nid, item in items.items()}
    for archived in archives or []:
        for nid, (entries, head) in archived["heads"].items():
            if nid not in items:
                results[nid] = {"notification_id": nid, "entries": 0, "head": None,
                                "problems": [f"notice {nid}: in the archived export {archived['where']} but no "
                                             "longer in the ledger"]}
                continue
            chain = items[nid].get("chain") or []
            if len(chain) < entries or chain[entries - 1].get("hash") != head:
                results[nid]["problems"].append(
                    f"notice {nid} entry {entries}: differs from the archived export {archived['where']} "
                    "(the chain was rewritten after it was archived)")
    checked = list(results.values())
    return {"loan_id": loan_id, "notices": checked, "archives_checked": len(archives or []),
            "intact": bool(checked) and not any(r["problems"] for r in checked)}


def _outcome_line(outcome: dict[str, Any]) -> str:
    words = _OUTCOME_WORDS.get(str(outcome.get("state")), "")
    text = f"{outcome.get('state')}" + (f": {words}" if words else "")
    if outcome.get("reason"):
        text += f" (reason: {outcome['reason']})"
    if outcome.get("delivered_at"):
        text += f", at {outcome['delivered_at']}"
    return text


def _sms_size(attempt: dict[str, Any]) -> str:
    """How a sent SMS went out: its encoding and the parts the carrier sent (and billed)."""
    if attempt.get("result") != "SENT" or not attempt.get("sms_segments"):
        return ""
    parts = int(attempt["sms_segments"])
    return f", {parts} {attempt.get('sms_encoding')} part{'s' if parts != 1 else ''}"


def as_table(evidence: dict[str, Any]) -> str:
    lines = [f"Proof of notice for loan {evidence['loan_id']} (generated {evidence['generated_at']})"]
    for notice in evidence["notices"]:
        chain = notice["chain"]
        chain_text = f"chain {chain['entries']} entries, head {str(chain['head'])[:16]}"
        if notice.get("rejected"):
            received = notice["received"]
            what = ", ".join(f"{k} {v}" for k, v in received.items() if k != "loan_id") or "no readable fields"
            lines += ["", f"* rejected status change, recorded {notice['recorded']['created_at']}: "
                          f"{notice['outcome']['reason']}",
                      f"  received: {what}",
                      f"  why: {notice['outcome'].get('detail') or '-'}",
                      f"  notice {notice['notification_id']}; {chain_text}"]
            continue
        change = notice["status_change"]
        lines += ["", f"* v{change.get('version', '?')} {change.get('status', '?')} (changed "
                      f"{change.get('status_updated_at', '?')}) -> {_outcome_line(notice['outcome'])}",
                  f"  notice {notice['notification_id']}; policy {notice['policy_version'] or '-'}; template "
                  f"{notice['template']['id'] or '-'} v{notice['template']['version'] or '-'}; sha256 "
                  f"{notice['content_sha256'] or '-'}; {chain_text}"]
        for a in notice["attempts"]:
            line = (f"  {a.get('started_at', '')}  #{a.get('attempt')} {a.get('channel')} via {a.get('provider')} "
                    f"to {a.get('destination', '-')}: {a['outcome']}")
            if a.get("error"):
                line += f" ({a['error']})"
            if a.get("message_id"):
                line += f", message {a['message_id']}"
            line += _sms_size(a)
            if a.get("expired_at"):
                line += f"; no confirmation within {a.get('deadline_s', '?')} s, deadline passed {a['expired_at']}"
            lines.append(line)
            for r in a.get("receipts", []):  # the first receipt of each kind, oldest first
                lines.append(f"      receipt {r.get('at')}: {r.get('status')} ({r.get('source')})"
                             + (f" {r['detail']}" if r.get("detail") else ""))
        for case in notice["review_cases"]:
            lines.append(f"  review case {case['case_id']}: opened {case['opened_at']} ({case['reason']}), "
                         f"{case['state']}" + (f" {case.get('decision')} by {case.get('resolved_by')} at "
                                               f"{case.get('resolved_at')}" if case.get("decision") else ""))
        for action in notice["human_actions"]:
            lines.append(f"  person {action.get('by')} at {action.get('at')}: {action.get('decision')}"
                         + (f" - {action['note']}" if action.get("note") else ""))
    for report in evidence.get("borrower_reports", []):
        lines += ["", f"* borrower reported not being notified, {report['opened_at']}: case {report['case_id']} "
                      f"({report['reason']}), {report['state']}"
                      + (f" {report['decision']} by {report.get('resolved_by')}" if report.get("decision") else "")
                      + f"; {report['notices_on_record']} notice(s) on record then"]
    return "\n".join(lines)
