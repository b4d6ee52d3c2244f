"""Plain-text tables of what happened to each loan's notices (used by the demo and the bench), and the deploy report.

    python -m localcloud.report --uncreated    the README's list of template resources the local cloud does not create
"""

from __future__ import annotations

from typing import Any

_MARK = {"SENT": "ok", "FAILED_PERMANENT": "failed", "FAILED_TRANSIENT": "retry", "SKIPPED": "skipped"}


def attempts_summary(notice: dict[str, Any]) -> str:
    parts = []
    for attempt in notice.get("attempts", []):
        mark = _MARK.get(attempt.get("result", ""), attempt.get("result", "?"))
        if attempt.get("delivery_status") not in (None, "SENT"):
            mark = attempt["delivery_status"].lower()
        detail = f" ({attempt['error']})" if attempt.get("error") else ""
        parts.append(f"{attempt['channel']} {mark}{detail}")
    return " -> ".join(parts) or "-"


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    return "\n".join(out)


def timeline(loan_id: str, notices: list[dict[str, Any]], executions: dict[str, str]) -> str:
    rows = []
    for notice in sorted(notices, key=lambda n: (n.get("created_at", ""), n.get("version", 0))):
        rows.append([
            notice.get("created_at", "")[11:23],
            f"v{notice.get('version', '?')} {notice.get('status', '?')}",
            attempts_summary(notice),
            notice.get("state", "?") + (f" ({notice['reason']})" if notice.get("reason") else ""),
            str(notice.get("duplicate_deliveries", 0)),
            executions.get(notice.get("execution_name") or notice["notification_id"], "-"),
        ])
    return f"loan {loan_id}\n" + table(rows, ["time (UTC)", "status change", "attempts", "ledger", "dup",
                                              "execution"])


if __name__ == "__main__":
    import sys

    from localcloud.deploy import uncreated_markdown

    if sys.argv[1:] != ["--uncreated"]:
        sys.exit("usage: python -m localcloud.report --uncreated")
    print(uncreated_markdown())
