"""`make demo`: deploy the local cloud and run a scripted scenario, then print a per-loan timeline.

Borrowers apply, loans move through statuses and every notice is confirmed by a delivery receipt; one
borrower's phone is invalid (email goes out instead, and is confirmed); one stream record is delivered twice
(still one notice); one malformed record is rejected with its reason; one borrower has no working contact, so
a review case opens and ops resolve it with the ops command; the proof of notice for that loan is printed.
Exits non-zero if any outcome differs from what the scenario expects.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from loan_notify.ledger import Ledger
from localcloud.cloud import LocalCloud
from localcloud.report import timeline

BORROWERS = [
    {"borrower_id": "B-100", "name": "Li Na", "locale": "zh-CN", "phone": "+8613800138000",
     "email": "li.na@example.com"},
    {"borrower_id": "B-200", "name": "Sam Carter", "locale": "en-US", "phone": "+14155552671",
     "email": "sam.carter@example.com"},
    # mistyped phone number at application: the notice must reach this borrower by email
    {"borrower_id": "B-300", "name": "Ana Souza", "locale": "en-US", "phone": "+1555",
     "email": "ana.souza@example.com"},
    # no working contact at all (the email bounces): a person has to take over
    {"borrower_id": "B-400", "name": "Omar Haddad", "locale": "en-US", "phone": "+9991234567",
     "email": "bounce@simulator.amazonses.com"},
]

# (loan, borrower, [statuses in order], fields)
JOURNEYS: list[tuple[str, str, list[str], dict[str, Any]]] = [
    ("L-1001", "B-100", ["SUBMITTED", "PRELIMINARY_APPROVED", "APPROVED", "DISBURSED"],
     {"amount": 150000, "currency": "CNY"}),
    ("L-1002", "B-200", ["SUBMITTED", "DOCUMENTS_REQUIRED", "REJECTED"],
     {"status_reason": "income could not be verified"}),
    ("L-1003", "B-300", ["SUBMITTED", "APPROVED"], {"amount": 18000, "currency": "USD"}),
    ("L-1005", "B-400", ["REJECTED"], {"status_reason": "debt-to-income ratio above policy"}),
]

EXPECTED = {  # loan -> (notices DELIVERED, SMS sent, emails sent)
    "L-1001": (4, 4, 0),
    "L-1002": (3, 3, 0),
    "L-1003": (2, 0, 2),
    "L-1005": (0, 0, 1),
}


def main() -> int:
    started = time.perf_counter()
    cloud = LocalCloud(time_scale=0.0).start()
    print(f"local cloud: template.yaml deployed as stack '{cloud.stack_name}' in {time.perf_counter() - started:.1f}s")
    for item in cloud.unsupported:
        print(f"  not created locally (no moto CloudFormation support): {item}")
    try:
        return run(cloud)
    finally:
        cloud.stop()


def run(cloud: LocalCloud) -> int:
    borrowers, loans = cloud.table("BorrowersTableName"), cloud.table("LoansTableName")
    ledger = Ledger(cloud.table("NotificationsTableName"))
    for borrower in BORROWERS:
        borrowers.put_item(Item=borrower)
    step = max(len(statuses) for _, _, statuses, _ in JOURNEYS)
    for index in range(step):  # the loans progress side by side, as on a busy platform
        for loan_id, borrower_id, statuses, fields in JOURNEYS:
            if index < len(statuses):
                loans.put_item(Item={"loan_id": loan_id, "borrower_id": borrower_id, "status": statuses[index],
                                     "version": index + 1, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                       time.gmtime()), **fields})
        cloud.wait_idle()  # the platform moves each loan on later, not within the same millisecond
        if index == 1:
            cloud.redeliver_last()  # the shard delivers the last record a second time
    loans.put_item(Item={"loan_id": "L-1004", "borrower_id": "B-200", "status": "APPROVED_PENDING_AUDIT",
                         "version": 1, "updated_at": "2026-11-29T08:00:00Z"})
    cloud.wait_idle()
    escalated = escalate(cloud)

    sfn = cloud.client("stepfunctions")
    executions = {e["name"]: e["status"] for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=cloud.outputs["NotifyStateMachineArn"]) for e in page["executions"]}
    problems = []
    for loan_id, *_ in JOURNEYS:
        notices = ledger.by_loan(loan_id)
        print()
        print(timeline(loan_id, notices, executions))
        phone = next(b["phone"] for b in BORROWERS if b["borrower_id"] == next(
            j[1] for j in JOURNEYS if j[0] == loan_id))
        email = next(b["email"] for b in BORROWERS if b["phone"] == phone)
        got = (sum(n["state"] == "DELIVERED" for n in notices),  # by a provider receipt
               sum(m["phone"] == phone for m in cloud.sms_messages()),
               sum(email in m["to"] for m in cloud.emails()))
        if got != EXPECTED[loan_id]:
            problems.append(f"{loan_id}: (sent, sms, emails) = {got}, expected {EXPECTED[loan_id]}")
    rejected = [i for i in ledger._table.scan()["Items"] if i.get("loan_id") == "L-1004"]
    print()
    print("rejected status changes (recorded, never sent):")
    for item in rejected:
        print(f"  {item['loan_id']}: {item['reason']} - {item['detail']}")
    if [i["reason"] for i in rejected] != ["invalid_status"]:
        problems.append(f"L-1004 should be rejected as invalid_status, got {rejected}")
    duplicates = sum(int(n.get("duplicate_deliveries", 0)) for j in JOURNEYS for n in ledger.by_loan(j[0]))
    if duplicates != 1:
        problems.append(f"expected exactly one duplicate delivery absorbed, saw {duplicates}")
    print()
    print(f"executions: {len(executions)} ({', '.join(f'{s} {n}' for s, n in _count(executions).items())}); "
          f"SMS sent: {len(cloud.sms_messages())}; emails sent: {len(cloud.emails())}; "
          f"duplicate deliveries absorbed: {duplicates}")
    if escalated != "DELIVERED_BY_PERSON":
        problems.append(f"L-1005 should end DELIVERED_BY_PERSON after the ops decision, got {escalated}")
    print()
    from loan_notify_ops.cli import main as ops

    print("$ python -m loan_notify_ops evidence L-1005")
    ops(["--stack-name", cloud.stack_name, "evidence", "L-1005"])
    if problems:
        print("\nDEMO FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        for poller in cloud.pump.pollers if cloud.pump else []:  # where the stream's records went
            print(f"  stream -> {poller.function_name}: {poller.stats.invocations} invocations, "
                  f"{poller.stats.delivered} records delivered, {poller.stats.filtered} filtered out, "
                  f"{poller.stats.retries} retries, {poller.stats.sent_to_on_failure} to the failure queue",
                  file=sys.stderr)
        if cloud.async_errors:
            print("  errors: " + "; ".join(str(e)[:300] for e in cloud.async_errors[:5]), file=sys.stderr)
        return 1
    print("demo OK: every status change ended in a delivered notice or a recorded reason")
    return 0


def escalate(cloud: LocalCloud) -> str:
    """L-1005 reached nobody: a review case is open. Ops list it and record that they phoned the borrower."""
    from loan_notify_ops.cli import main as ops

    print()
    print("$ python -m loan_notify_ops cases list")
    ops(["--stack-name", cloud.stack_name, "cases", "list"])
    case_id = next(c["case_id"] for c in cloud.table("ReviewCasesTableName").scan()["Items"]
                   if c["loan_id"] == "L-1005")
    print(f"$ python -m loan_notify_ops cases resolve {case_id} --decision reached_by_phone --by ops.li "
          f"--note 'called the borrower, explained the decision'")
    ops(["--stack-name", cloud.stack_name, "cases", "resolve", case_id, "--decision", "reached_by_phone",
         "--by", "ops.li", "--note", "called the borrower, explained the decision"])
    cloud.wait_idle()
    notice = Ledger(cloud.table("NotificationsTableName")).by_loan("L-1005")[0]
    return notice["state"]


def _count(executions: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in executions.values():
        counts[status] = counts.get(status, 0) + 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
