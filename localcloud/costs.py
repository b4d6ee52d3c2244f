"""`make costs`: what one notice costs to run, measured on the local cloud, priced at AWS list prices.

Runs each scenario for --notices notices and counts, per notice:
- billed Step Functions state transitions (every state entered, plus every retry of a task);
- AWS API calls made by the system (Lambda handlers and the state machine's integrations), by operation, and
  DynamoDB writes by table (a write to a table with global secondary indexes is billed once per index too);
- Lambda invocations and the bytes they log;
then prices them. Messaging fees are not infrastructure and are left out (the SMS carrier price, SES's
$0.10 per 1,000 emails). Lambda duration is not measurable in process: it is priced at an assumed billed
duration per invocation (the --lambda-ms option), which the output states.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import Counter
from typing import Any

from localcloud.cloud import LocalCloud

# us-east-1 list prices (USD), as published by AWS for 2026; change them here if yours differ.
PRICES = {
    "sfn_transition": 0.025 / 1000,  # Step Functions Standard, per state transition
    "lambda_request": 0.20 / 1_000_000,
    "lambda_gb_second_arm64": 0.0000133334,
    "dynamodb_write_unit": 0.625 / 1_000_000,  # on-demand, per write request unit (1 KB)
    "dynamodb_read_unit": 0.125 / 1_000_000,  # on-demand, per read request unit (4 KB, strongly consistent)
    "sns_publish": 0.50 / 1_000_000,  # topic publishes (alerts, SES events), per 64 KB chunk
    "sqs_request": 0.40 / 1_000_000,
    "logs_ingest_gb": 0.50,
    "xray_trace": 5.00 / 1_000_000,
}
LAMBDA_MEMORY_GB = 0.5  # template Globals MemorySize: 512
DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
DDB_READS = {"GetItem", "Query", "BatchGetItem", "Scan"}
# Write units per write, by table: a write is billed per KB of the item, and the ledger item grows with its attempts
# and its hash chain from about 1 KB when opened to 4.6 KB once delivered (a happy-path SMS notice, measured on the
# local cloud): 3 units per write on average. Each of its two global secondary indexes (ALL projection) repeats the
# write (the sparse UndeliveredCritical index holds keys only); the inbox has one index, the review cases two.
TABLE_WRITE_UNITS = {"NotificationsTableName": 3 * 3, "InboxTableName": 1 * 2, "ReviewCasesTableName": 1 * 3}
XRAY_SAMPLED = 0.05  # the default sampling rule records 1 trace a second and 5% of the rest: at volume, 5%
_local = threading.local()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _count(counts: Counter, url: str, headers: Any, body: Any) -> None:
    """One AWS call the system made, by service and operation (DynamoDB writes also by table)."""
    if getattr(_local, "harness", False):
        return
    target = _text(headers.get("X-Amz-Target", b""))
    body = _text(body)
    if target:
        operation = target.split(".")[-1]
    else:  # query and rest protocols
        action = [p.split("=", 1)[1] for p in body.split("&") if p.startswith("Action=")]
        operation = action[0] if action else url.rsplit("/", 1)[-1].split("?")[0]
    service = url.split("//", 1)[1].split(".", 1)[0]
    if operation == "Publish" and "PhoneNumber=" in body:
        operation = "Publish(SMS)"  # an SMS: its price is the carrier fee, left out here
    if service == "dynamodb" and operation in DDB_WRITES:
        try:
            table = json.loads(body).get("TableName", "")
        except ValueError:
            table = ""
        counts[f"{service}:{operation}@{table}"] += 1
        return
    counts[f"{service}:{operation}"] += 1


def _install_counter(counts: Counter) -> tuple[Any, Any]:
    """Count every call moto answers: through its botocore stubber, and through the local cloud's fast lane
    (`localcloud.fastlane`: DynamoDB, SQS, Step Functions, Lambda's Invoke and SNS's Publish), which answers before
    the stubber would see the call (each try of a retried call, as the stubber counts them)."""
    from moto.core import botocore_stubber

    from localcloud import fastlane

    original = botocore_stubber.BotocoreStubber.process_request
    original_attempt = fastlane.attempt

    def counting(self: Any, request: Any) -> Any:
        _count(counts, request.url, request.headers, request.body)
        return original(self, request)

    def counting_attempt(model: Any, params: dict[str, Any], request_signer: Any) -> Any:
        answered = original_attempt(model, params, request_signer)
        if answered is not None:  # the body as it would have been sent (a query-protocol form is a dict here)
            _count(counts, params["url"], params.get("headers", {}), fastlane.request_body(params))
        return answered

    botocore_stubber.BotocoreStubber.process_request = counting
    fastlane.attempt = counting_attempt
    return original, original_attempt


def _uninstall_counter(originals: tuple[Any, Any]) -> None:
    from moto.core import botocore_stubber

    from localcloud import fastlane

    botocore_stubber.BotocoreStubber.process_request, fastlane.attempt = originals


class _Harness:
    """Calls made by the scenario itself (writing loans, reading results) are not the system's cost."""

    def __enter__(self) -> None:
        _local.harness = True

    def __exit__(self, *exc: Any) -> None:
        _local.harness = False


def _transitions(cloud: LocalCloud, name: str) -> int:
    history = cloud.history(name)
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    scheduled = sum(1 for e in history if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled"))
    tasks = sum(1 for e in history if e["type"] == "TaskStateEntered")
    return entered + max(0, scheduled - tasks)  # each retry of a task is a billed transition too


def run_scenario(cloud: LocalCloud, counts: Counter, name: str, notices: int, borrower: dict[str, Any]
                 ) -> dict[str, Any]:
    with _Harness():
        cloud.table("BorrowersTableName").put_item(Item=borrower)
        logs_before = sum(len(line.line) + 1 for line in cloud.runtime.logs)
        invocations_before = sum(cloud.runtime.invocations.values())
    counts.clear()
    loans = cloud.table("LoansTableName")
    for n in range(notices):
        with _Harness():
            loans.put_item(Item={"loan_id": f"{name}-{n}", "borrower_id": borrower["borrower_id"],
                                 "status": "APPROVED", "version": 1, "updated_at": "2026-11-29T08:00:00Z"})
    with _Harness():
        cloud.wait_idle(120)
        names = [f"{name}-{n}" for n in range(notices)]
        sfn = cloud.client("stepfunctions")
        executions = [e["name"] for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=cloud.outputs["NotifyStateMachineArn"]) for e in page["executions"]
            if e["name"].rsplit("-APPROVED", 1)[0] in names]
        transitions = sum(_transitions(cloud, e) for e in executions) / notices
        log_bytes = (sum(len(line.line) + 1 for line in cloud.runtime.logs) - logs_before) / notices
        invocations = (sum(cloud.runtime.invocations.values()) - invocations_before) / notices
        ended = _ended(cloud, names)
    calls = {k: v / notices for k, v in sorted(counts.items())}
    return {"scenario": name, "notices": notices, "transitions": transitions, "lambda_invocations": invocations,
            "log_bytes": log_bytes, "api_calls": calls, "api_calls_total": sum(calls.values()), "ended": ended}


def _ended(cloud: LocalCloud, loans: list[str]) -> dict[str, Any]:
    """How the scenario's notices ended ({state: count}), and for any that did not end DELIVERED: its state, reason,
    review case reason and the functions' error lines, so a figure taken from a run that went wrong says so."""
    from loan_notify.ledger import Ledger

    wanted = set(loans)
    ledger = Ledger(cloud.table("NotificationsTableName"))
    items = [item for loan in loans for item in ledger.by_loan(loan)]
    states = Counter(i.get("state") for i in items)
    others = [{"loan_id": i["loan_id"], "state": i.get("state"), "reason": i.get("reason")}
              for i in items if i.get("state") != "DELIVERED"]
    cases = [{"loan_id": c.get("loan_id"), "reason": c.get("reason"), "detail": c.get("detail")}
             for c in cloud.table("ReviewCasesTableName").scan()["Items"] if c.get("loan_id") in wanted]
    errors = [f"{line.function}: {line.line[:300]}" for line in cloud.runtime.logs
              if '"level":"ERROR"' in line.line or "Traceback" in line.line][:10] if others else []
    return {"states": dict(states), "not_delivered": others[:10], "cases": cases[:10], "errors": errors}


def price(result: dict[str, Any], lambda_ms: float, units_by_table: dict[str, int]) -> dict[str, float]:
    calls = result["api_calls"]
    write_units = sum(v * units_by_table.get(k.split("@", 1)[1], 1) for k, v in calls.items()
                      if k.startswith("dynamodb:") and "@" in k)
    ddb_reads = sum(v for k, v in calls.items() if k.startswith("dynamodb:") and k.split(":")[1] in DDB_READS)
    sqs_requests = sum(v for k, v in calls.items() if k.startswith("sqs:"))
    topic_publishes = calls.get("sns:Publish", 0)
    invocations = result["lambda_invocations"]
    parts = {
        "step_functions": result["transitions"] * PRICES["sfn_transition"],
        "lambda_requests": invocations * PRICES["lambda_request"],
        "lambda_duration": invocations * (lambda_ms / 1000) * LAMBDA_MEMORY_GB * PRICES["lambda_gb_second_arm64"],
        "dynamodb": write_units * PRICES["dynamodb_write_unit"] + ddb_reads * PRICES["dynamodb_read_unit"],
        "sqs": sqs_requests * PRICES["sqs_request"],
        "sns_topics": max(0.0, topic_publishes) * PRICES["sns_publish"],
        "cloudwatch_logs": result["log_bytes"] / 1e9 * PRICES["logs_ingest_gb"],
        "xray": (invocations + 1) * XRAY_SAMPLED * PRICES["xray_trace"],  # a trace per invocation and execution
    }
    parts["total"] = sum(parts.values())
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notices", type=int, default=20)
    parser.add_argument("--lambda-ms", type=float, default=100.0, help="assumed billed duration per invocation")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    counts: Counter = Counter()
    with LocalCloud(time_scale=0.0) as cloud:
        originals = _install_counter(counts)
        try:
            happy = run_scenario(cloud, counts, "happy", args.notices, {
                "borrower_id": "B-happy", "locale": "en-US", "phone": "+8613800138000", "email": "a@example.com"})
            fallback = run_scenario(cloud, counts, "fallback", args.notices, {
                "borrower_id": "B-fallback", "locale": "en-US", "phone": "+1555", "email": "b@example.com"})
        finally:
            _uninstall_counter(originals)
    results = []
    units = {cloud.outputs[output]: n for output, n in TABLE_WRITE_UNITS.items()}
    for result in (happy, fallback):
        result["cost_usd"] = price(result, args.lambda_ms, units)
        result["cost_per_million_usd"] = round(result["cost_usd"]["total"] * 1_000_000, 2)
        results.append(result)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"cost per notice at list prices (us-east-1), messaging fees excluded; Lambda priced at "
          f"{args.lambda_ms:.0f} ms x {LAMBDA_MEMORY_GB * 1024:.0f} MB per invocation (assumed)")
    for r in results:
        print(f"\n{r['scenario']}: {r['transitions']:.1f} state transitions, {r['lambda_invocations']:.1f} Lambda "
              f"invocations, {r['api_calls_total']:.1f} AWS API calls, {r['log_bytes']:.0f} log bytes per notice")
        print(f"    ended: {r['ended']['states']}")
        for what in ("not_delivered", "cases", "errors"):
            if r["ended"][what]:
                print(f"    {what.replace('_', ' ')}: {r['ended'][what]}")
        for call, n in r["api_calls"].items():
            print(f"    {n:5.2f}  {call}")
        for part, usd in r["cost_usd"].items():
            print(f"    {part:16} ${usd:.8f}")
        print(f"    => ${r['cost_per_million_usd']:,.2f} per million notices")
    delivered = all(set(r["ended"]["states"]) == {"DELIVERED"} for r in (happy, fallback))
    if not delivered:
        print("\nnot every notice ended DELIVERED: the figures above are not those of the scenarios")
    goal = (delivered and happy["cost_usd"]["total"] <= 0.00015 and happy["transitions"] <= 5
            and fallback["cost_usd"]["total"] < 0.0003)
    print(f"\ngoal (happy path: <= 5 transitions and <= $0.00015 per notice; fallback < $0.0003): "
          f"{'met' if goal else 'NOT met'}")
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main())
