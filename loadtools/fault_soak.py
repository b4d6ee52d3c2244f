"""`make soak`: faults and redeliveries in the middle of traffic, on the local cloud (the real template, in process).

Status changes for borrowers of three kinds (reachable by SMS; SMS failing, email working; no working contact) are
written one after another while faults are injected between them, drawn from a seeded random sequence:

- a stream record delivered again (a retried shard), and an SNS receipt published twice (at-least-once delivery);
- a Lambda sandbox that dies once for an event, before its handler ran or after it finished its work (the router
  and the outbox consumer: their triggers deliver the event again);
- the SMS or email provider throttling, or down (the backup provider's region takes over), for a few calls;
- Step Functions callbacks throttled;
- a provider that takes a text and whose answer is lost (the outcome is unknown: a person owns the notice).

Then, once everything has settled, the mission is checked notice by notice: every status change has its notice;
each notice ended confirmed (a positive receipt) or owned by a person (an open review case), or superseded by a
newer status of its loan; no message went out that the ledger does not hold, and no notice reached its borrower
twice on one channel; a borrower whose contacts work never went to a person unless a send's outcome was unknown;
no personal data in any execution or log line; every ledger item's hash chain verifies; nothing on the failure
queues. Exits non-zero on any violation, naming it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from loadtools.burst_bench import midday_zone
from loan_notify.chain import verify as verify_chain
from loan_notify.ledger import Ledger
from loan_notify.policy import POLICIES
from loan_notify.review import ReviewCases
from loan_notify.vocabulary import DeliveryStatus, LoanStatus
from localcloud.cloud import LocalCloud

KINDS = ("reachable", "sms_fails", "unreachable")
STATUSES = ("APPROVED", "REJECTED", "REPAYMENT_DUE", "OVERDUE", "DOCUMENTS_REQUIRED", "DISBURSED")
CRASHABLE = ("StreamRouterFunction", "SendNoticeFunction")  # their triggers deliver a failed event again
# Step Functions' Lambda tasks: a sandbox that dies (a timeout, out of memory, an exit) is reported as one of these
TASKS = ("PrepareNoticeFunction", "AwaitReceiptFunction", "RecordOutcomeFunction", "OpenReviewCaseFunction")
SANDBOX_ERRORS = ("Lambda.Unknown", "Sandbox.Timedout", "Runtime.ExitError", "Runtime.OutOfMemory")
FAULTS = ("redeliver_stream", "duplicate_receipts", "crash_before", "crash_after", "crash_task_before",
          "crash_task_after", "throttle_sms", "down_sms", "throttle_email", "down_email", "throttle_callbacks",
          "lose_sms_answer")
SETTLED_OK = {"DELIVERED", "NEEDS_REVIEW", "SUPERSEDED", "SENT_UNCONFIRMED"}
CONFIRMING = {DeliveryStatus.DELIVERED.value, DeliveryStatus.READ.value}


class Faults:
    """The fault injector: provider knobs, stream and receipt redelivery, and sandboxes that die once per event."""

    def __init__(self, cloud: LocalCloud, rng: random.Random) -> None:
        self.cloud, self.rng = cloud, rng
        self.injected: Counter[str] = Counter()
        self.crashes: Counter[str] = Counter()
        self._crash_next: dict[str, str] = {}  # function logical id -> "before" | "after", for its next new event
        self._crashed: set[str] = set()
        assert cloud.runtime is not None
        runtime = cloud.runtime
        self._invoke = runtime._invoke_locked
        runtime._invoke_locked = self._invoke_locked  # type: ignore[method-assign]
        self._publish = cloud.providers.publish
        self._duplicate_next = 0
        self._duplicate_lock = threading.Lock()
        cloud.providers.publish = self._publish_maybe_twice

    def crash_next(self, logical_id: str, when: str) -> None:
        """The function's sandbox dies on its next event it has not died on: "before" or "after" its work."""
        self._crash_next[logical_id] = when

    def undo(self) -> None:
        assert self.cloud.runtime is not None
        self.cloud.runtime._invoke_locked = self._invoke  # type: ignore[method-assign]
        self.cloud.providers.publish = self._publish

    @staticmethod
    def _event_key(event: Any) -> str:
        """Identifies an event across its redeliveries: the records' own ids (an SQS record's receipt handle and
        receive count change with each delivery)."""
        records = event.get("Records") if isinstance(event, dict) else None
        if records:
            return "|".join(str(r.get("messageId") or r.get("eventID") or json.dumps(r, sort_keys=True, default=str))
                            for r in records)
        return json.dumps(event, sort_keys=True, default=str)

    def _invoke_locked(self, code: Any, env: dict[str, str], event: Any) -> tuple[str, bool, str]:
        when = self._crash_next.get(code.logical_id)
        key = f"{code.logical_id}:{self._event_key(event)}" if when else ""
        if when and key not in self._crashed:
            self._crashed.add(key)
            del self._crash_next[code.logical_id]
            self.crashes[f"{code.logical_id} {when}"] += 1
            error = json.dumps({"errorType": SANDBOX_ERRORS[len(self._crashed) % len(SANDBOX_ERRORS)],
                                "errorMessage": f"the sandbox died {when} its work"})
            if when == "before":
                return error, True, ""
            _payload, _is_error, logs = self._invoke(code, env, event)
            return error, True, logs
        return self._invoke(code, env, event)

    def _publish_maybe_twice(self, topic_arn: str, event: dict[str, Any]) -> None:
        assert self._publish is not None
        self._publish(topic_arn, event)
        with self._duplicate_lock:
            again = self._duplicate_next > 0
            self._duplicate_next -= again
        if again:
            self._publish(topic_arn, event)

    def inject(self) -> str:
        fault = self.rng.choice(FAULTS)
        providers, region = self.cloud.providers, self.cloud.region
        times = self.rng.randint(1, 3)
        if fault == "redeliver_stream":
            self.cloud.redeliver_last("LoansTableName", count=times)
        elif fault == "duplicate_receipts":
            with self._duplicate_lock:
                self._duplicate_next += times
        elif fault in ("crash_before", "crash_after"):
            self.crash_next(self.rng.choice(CRASHABLE), fault.removeprefix("crash_"))
        elif fault in ("crash_task_before", "crash_task_after"):
            self.crash_next(self.rng.choice(TASKS), fault.removeprefix("crash_task_"))
        elif fault == "throttle_sms":
            providers.throttle("sms-voice", region, times=times)
        elif fault == "down_sms":
            providers.down("sms-voice", region, times=times)
        elif fault == "throttle_email":
            providers.throttle("ses", region, times=times)
        elif fault == "down_email":
            providers.down("ses", region, times=times)
        elif fault == "throttle_callbacks":
            providers.throttle_callbacks(times=times)
        elif fault == "lose_sms_answer":
            providers.lose_answer("sms-voice", region, times=1)
        self.injected[fault] += 1
        return fault


def _borrower(kind: str, n: int, zone: str) -> dict[str, Any]:
    phone = f"+86139{n:08d}"
    email = f"soak{n}@example.com"
    if kind == "unreachable":
        email = f"bounce+soak{n}@simulator.amazonses.com"
    return {"borrower_id": f"SB-{n}", "name": f"Soak Borrower {n}", "locale": "en-US", "time_zone": zone,
            "phone": phone, "email": email, "kind": kind}


def _queue_depth(cloud: LocalCloud, output_key: str) -> int:
    sqs = cloud.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=cloud.outputs[output_key],
                                          AttributeNames=["ApproximateNumberOfMessages",
                                                          "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@dataclass
class Baseline:
    """What the local cloud held before the soak (a flow test's cloud has run other tests): only what the soak added
    is checked."""

    failure_queue: int
    async_errors: int
    log_lines: int
    executions: set[str]

    @classmethod
    def of(cls, cloud: LocalCloud) -> Baseline:
        assert cloud.runtime is not None
        return cls(_queue_depth(cloud, "StreamFailureQueueUrl"), len(cloud.async_errors), len(cloud.runtime.logs),
                   set(_execution_arns(cloud)))


def check(cloud: LocalCloud, written: list[dict[str, Any]], borrowers: dict[str, dict[str, Any]],
          baseline: Baseline) -> tuple[list[str], Counter[str]]:
    """Every invariant of the mission, notice by notice. Returns the violations and the notices' end states."""
    violations: list[str] = []
    ledger = Ledger(cloud.table("NotificationsTableName"))
    open_cases = {c.get("notification_id") for c in ReviewCases(cloud.table("ReviewCasesTableName")).open_cases()}
    states: Counter[str] = Counter()
    latest_version: dict[str, int] = {}
    by_loan: dict[str, list[dict[str, Any]]] = {}
    for change in written:
        latest_version[change["loan_id"]] = max(latest_version.get(change["loan_id"], 0), change["version"])
        if change["loan_id"] not in by_loan:
            by_loan[change["loan_id"]] = ledger.by_loan(change["loan_id"])
    for change in written:
        loan_id, version = change["loan_id"], change["version"]
        borrower = borrowers[change["borrower_id"]]
        notices = [n for n in by_loan[loan_id] if int(n.get("version", 0)) == version]
        where = f"{loan_id} v{version} ({change['status']}, {borrower['kind']})"
        if len(notices) != 1:
            violations.append(f"{where}: {len(notices)} notices in the ledger, not one")
            continue
        states[str(notices[0].get("state"))] += 1
        violations += [f"{where}: {problem}" for problem in _notice_problems(
            notices[0], change, borrower["kind"], newer=version < latest_version[loan_id], owned=open_cases)]
    notices = [n for items in by_loan.values() for n in items]
    return violations + _trace_problems(cloud, notices, borrowers, baseline), states


def _notice_problems(notice: dict[str, Any], change: dict[str, Any], kind: str, *, newer: bool, owned: set[Any]
                     ) -> list[str]:
    """One notice: settled as the mission allows, at most one message per channel, and one confirmed at most."""
    problems = []
    state, attempts = str(notice.get("state")), notice.get("attempts") or []
    per_channel = Counter(a.get("channel") for a in attempts if a.get("message_id"))
    twice = [channel for channel, count in per_channel.items() if count > 1]
    if twice:
        problems.append(f"more than one message on {twice}")
    confirmed = [a for a in attempts if a.get("delivery_status") in CONFIRMING]
    # a confirmation deadline that passed moves the notice on to its next channel, by design: a receipt for the
    # expired attempt may still confirm it later (with the local cloud's clock compressed, a busy machine gets there)
    expired = [a for a in attempts if a.get("expired_at")]
    if len(confirmed) > 1 + len([a for a in confirmed if a in expired]):
        problems.append(f"{len(confirmed)} confirmed messages")
    if state not in SETTLED_OK:
        problems.append(f"ended {state} ({notice.get('reason')})")
    elif state == "DELIVERED" and not confirmed:
        problems.append("DELIVERED with no confirming receipt")
    elif state == "NEEDS_REVIEW" and notice["notification_id"] not in owned:
        problems.append("NEEDS_REVIEW without an open review case")
    elif state == "SUPERSEDED" and not newer:
        problems.append("SUPERSEDED, yet no newer status of the loan was written")
    elif state == "SENT_UNCONFIRMED" and POLICIES[LoanStatus(change["status"])].critical:
        problems.append("a critical notice ended SENT_UNCONFIRMED")
    unknown = any(a.get("result") == "OUTCOME_UNKNOWN" for a in attempts)
    if state == "NEEDS_REVIEW" and kind != "unreachable" and not unknown and not expired:
        problems.append(f"a reachable borrower ({kind}) went to a person ({notice.get('reason')}; "
                        f"attempts {[_brief(a) for a in attempts]})")
    if state == "DELIVERED" and kind == "unreachable":
        problems.append("DELIVERED to a borrower with no working contact")
    return problems


def _trace_problems(cloud: LocalCloud, notices: list[dict[str, Any]], borrowers: dict[str, dict[str, Any]],
                    baseline: Baseline) -> list[str]:
    """Across the soak: every message a provider took is one the ledger holds (a lost answer's message is the known
    exception: the provider took it, the sender never learnt its id, and the notice is a person's); nothing on the
    stream's failure queue; hash chains; no personal data in executions or logs; no receipt's invocation failed."""
    problems = []
    attempts = [a for n in notices for a in n.get("attempts") or []]
    tracked = {str(a["message_id"]) for a in attempts if a.get("message_id")}
    phones = {b["phone"] for b in borrowers.values()}
    emails = {b["email"] for b in borrowers.values()}
    sent = [m for m in cloud.sms_messages() if m["phone"] in phones and m["provider"] == "sms-voice"]
    sent += [m for m in cloud.emails() if set(m["to"]) & emails]
    untracked = [m for m in sent if m["message_id"] not in tracked]
    allowed = sum(1 for a in attempts if a.get("result") == "OUTCOME_UNKNOWN")
    if len(untracked) > allowed:
        problems.append(f"{len(untracked)} messages the ledger does not hold, {allowed} sends of unknown outcome")
    depth = _queue_depth(cloud, "StreamFailureQueueUrl") - baseline.failure_queue
    if depth:
        problems.append(f"{depth} records on the stream's failure queue")
    chain_problems = [str(p) for item in notices for p in verify_chain(item)]
    if chain_problems:
        problems.append(f"hash chains that do not verify: {chain_problems[:3]}")
    secrets = {v for b in borrowers.values() for v in (b["phone"], b["email"], b["name"])}
    assert cloud.runtime is not None
    leaked = {s for line in cloud.runtime.logs[baseline.log_lines:] for s in secrets if s in line.line}
    sfn = cloud.client("stepfunctions")
    for arn in set(_execution_arns(cloud)) - baseline.executions:
        described = sfn.describe_execution(executionArn=arn)
        text = described.get("input", "") + described.get("output", "") + json.dumps(cloud.history(arn), default=str)
        leaked |= {s for s in secrets if s in text}
    if leaked:
        problems.append(f"personal data in executions or logs: {len(leaked)} values")
    failed = cloud.async_errors[baseline.async_errors:]
    if failed:
        problems.append(f"{len(failed)} receipts' invocations failed: {failed[:2]}")
    return problems


def _brief(attempt: dict[str, Any]) -> str:
    return f"{attempt.get('channel')}:{attempt.get('result')}/{attempt.get('delivery_status')}"


def _execution_arns(cloud: LocalCloud) -> list[str]:
    sfn = cloud.client("stepfunctions")
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=cloud.outputs["NotifyStateMachineArn"])
    return [e["executionArn"] for page in pages for e in page["executions"]]


def run(changes: int, seed: int, fault_rate: float, cloud: LocalCloud | None = None) -> dict[str, Any]:
    """Write `changes` status changes with faults between them; settle; check. With `cloud`, use that running local
    cloud (the flow test's) and leave it running."""
    rng = random.Random(seed)
    own = cloud is None
    cloud = cloud or LocalCloud(time_scale=0.0).start()
    baseline = Baseline.of(cloud)
    faults = Faults(cloud, rng)
    started = time.perf_counter()
    try:
        borrowers_table, loans = cloud.table("BorrowersTableName"), cloud.table("LoansTableName")
        zone = midday_zone()
        base = rng.randrange(10_000_000)
        borrowers: dict[str, dict[str, Any]] = {}
        written: list[dict[str, Any]] = []
        loan_versions: dict[str, tuple[str, int]] = {}
        loan_status: dict[str, str] = {}
        for n in range(changes):
            # a new loan (and borrower) two times in three; otherwise the next status of a loan already written
            if loan_versions and rng.random() < 1 / 3:
                loan_id = rng.choice(sorted(loan_versions))
                borrower_id, version = loan_versions[loan_id]
                version += 1
            else:
                number = base + n
                kind = rng.choices(KINDS, weights=(6, 2, 2))[0]
                borrower = _borrower(kind, number, zone)
                borrowers[borrower["borrower_id"]] = borrower
                if kind == "sms_fails":
                    cloud.providers.sms_outcome(borrower["phone"], "TEXT_CARRIER_UNREACHABLE",
                                                "Unknown error attempting to reach phone")
                elif kind == "unreachable":
                    cloud.providers.sms_outcome(borrower["phone"], "TEXT_INVALID", "Invalid destination number")
                borrowers_table.put_item(Item={k: v for k, v in borrower.items() if k != "kind"})
                loan_id, borrower_id, version = f"SK-{number}", borrower["borrower_id"], 1
            loan_versions[loan_id] = (borrower_id, version)
            # a status change: the same status again is not one (the router's filter lets it pass unnoticed)
            status = rng.choice([s for s in STATUSES if s != loan_status.get(loan_id)])
            loan_status[loan_id] = status
            change = {"loan_id": loan_id, "borrower_id": borrower_id, "status": status,
                      "version": version, "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "amount": 1000 + n, "currency": "USD"}
            loans.put_item(Item=change)
            written.append(change)
            if rng.random() < fault_rate:
                faults.inject()
            time.sleep(rng.random() * 0.02)
        cloud.wait_idle(timeout=300)
        violations, states = check(cloud, written, borrowers, baseline)
        return {"changes": changes, "seed": seed, "fault_rate": fault_rate, "loans": len(loan_versions),
                "borrowers": dict(Counter(b["kind"] for b in borrowers.values())),
                "faults": dict(faults.injected), "crashes": dict(faults.crashes), "ended": dict(states),
                "violations": violations, "seconds": round(time.perf_counter() - started, 1)}
    finally:
        faults.undo()
        cloud.providers.reset()
        if own:
            cloud.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.3, help="chance of a fault after each write")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.changes, args.seed, args.fault_rate)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"soak: {result['changes']} status changes on {result['loans']} loans (seed {result['seed']}), "
              f"borrowers {result['borrowers']}, in {result['seconds']} s")
        print(f"faults armed (one armed again before it fired counts twice): {result['faults']}")
        print(f"sandboxes that died once: {result['crashes']}")
        print(f"notices ended: {result['ended']}")
        for violation in result["violations"]:
            print(f"  VIOLATION {violation}")
        print("every change confirmed or owned; nothing sent twice or untracked; no personal data"
              if not result["violations"] else f"{len(result['violations'])} violations")
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
