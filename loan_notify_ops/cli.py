"""loan-notify ops command.

    python -m loan_notify_ops [--stack-name S] [--region R] [--endpoint-url URL] cases list [--all] [--json]
    python -m loan_notify_ops ... cases resolve CASE_ID --decision reached_by_phone|contact_corrected|closed \\
        --note TEXT --by NAME [--corrected phone|email ...]
    python -m loan_notify_ops ... evidence [show] LOAN_ID [--json]
    python -m loan_notify_ops ... evidence verify LOAN_ID [--json]
    python -m loan_notify_ops ... evidence export LOAN_ID [--archive]

Table names come from the stack's outputs (CloudFormation DescribeStacks), so the same command works against
`make local` (--endpoint-url http://127.0.0.1:4566) and a deployed stack (your AWS profile).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from loan_notify.archive import archive, archived_heads
from loan_notify.borrowers import Borrowers
from loan_notify.evidence import as_table, export, verify
from loan_notify.executions import StepFunctionsStarter, TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.review import CaseNotOpen, Decision, DecisionConflict, ReviewCases, resolve_case
from loan_notify.vocabulary import Channel

_CORRECTED = {"phone": Channel.SMS, "email": Channel.EMAIL}


class Stack:
    def __init__(self, name: str, region: str | None, endpoint_url: str | None) -> None:
        self._session = boto3.session.Session(region_name=region)
        self._endpoint = endpoint_url
        stacks = self.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint)

    def table(self, output: str) -> Any:
        return self._session.resource("dynamodb", endpoint_url=self._endpoint).Table(self.outputs[output])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loan_notify_ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", default=os.environ.get("LOAN_NOTIFY_STACK", "loan-notify-local"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--endpoint-url", default=os.environ.get("LOAN_NOTIFY_ENDPOINT_URL"))
    commands = parser.add_subparsers(dest="command", required=True)
    cases = commands.add_parser("cases", help="review cases").add_subparsers(dest="action", required=True)
    listing = cases.add_parser("list", help="open cases (oldest first)")
    listing.add_argument("--json", action="store_true")
    resolve = cases.add_parser("resolve", help="record a decision and resume the waiting execution")
    resolve.add_argument("case_id")
    resolve.add_argument("--decision", required=True, choices=[d.value for d in Decision])
    resolve.add_argument("--note", required=True, help="what you did; kept in the case and the ledger")
    resolve.add_argument("--by", required=True, help="who decided")
    resolve.add_argument("--corrected", nargs="*", default=[], choices=sorted(_CORRECTED),
                         help="with contact_corrected: which contact the platform fixed")
    evidence = commands.add_parser(
        "evidence", help="proof of notice for a loan: show (default), verify its hash chains, export (--archive)",
        description="evidence [show] LOAN_ID [--json] | evidence verify LOAN_ID [--json] | "
                    "evidence export LOAN_ID [--archive]")
    evidence.add_argument("words", nargs="+", metavar="[show|verify|export] LOAN_ID")
    evidence.add_argument("--json", action="store_true")
    evidence.add_argument("--archive", action="store_true",
                          help="with export: also write it to the stack's Object Lock bucket (compliance mode)")
    return parser


def _list(stack: Stack, as_json: bool) -> int:
    cases = ReviewCases(stack.table("ReviewCasesTableName")).open_cases()
    now = datetime.now(timezone.utc).isoformat()
    rows = [{**{k: c.get(k) for k in ("case_id", "loan_id", "status", "reason", "opened_at", "due_at", "alerts")},
             "resolving": c.get("pending", {}).get("decision")} for c in cases]
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    if not rows:
        print("no open review cases")
        return 0
    for row in rows:
        overdue = " OVERDUE" if row["due_at"] <= now else ""
        print(f"{row['case_id']}  loan {row['loan_id']} {row['status']}  {row['reason']}  opened {row['opened_at']}"
              f"  due {row['due_at']}{overdue}  alerts {row['alerts']}"
              + (f"  RESOLVING as {row['resolving']}: run that resolve again to finish it" if row["resolving"] else ""))
    return 0


def _resolve(stack: Stack, args: argparse.Namespace) -> int:
    """Exit 0 only when the decision took effect (the execution resumed, a resend started, the state recorded)."""
    sfn = stack.client("stepfunctions")
    try:
        result = resolve_case(
            args.case_id, decision=Decision(args.decision), note=args.note, by=args.by,
            corrected=[_CORRECTED[c] for c in args.corrected], cases=ReviewCases(stack.table("ReviewCasesTableName")),
            ledger=Ledger(stack.table("NotificationsTableName")), contacts=Borrowers(stack.table("BorrowersTableName")),
            callbacks=TaskCallbacks(sfn), executions=StepFunctionsStarter(sfn, stack.outputs["NotifyStateMachineArn"]))
    except (CaseNotOpen, DecisionConflict, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as err:
        print(f"error: {err}\nThe decision is kept on the case as pending: run the same command again to finish it.",
              file=sys.stderr)
        return 1
    print(json.dumps(result))
    print(("already resolved: " if result["already_resolved"] else "") + result["outcome"], file=sys.stderr)
    return 0


_EVIDENCE_ACTIONS = ("show", "verify", "export")


def _evidence(stack: Stack, args: argparse.Namespace) -> int:
    """Exit 1 when the loan has no notice, or (verify) when any chain fails; 2 on a usage error."""
    words = list(args.words)
    action = words.pop(0) if len(words) == 2 and words[0] in _EVIDENCE_ACTIONS else "show"
    if len(words) != 1:
        print(f"error: expected [{'|'.join(_EVIDENCE_ACTIONS)}] LOAN_ID, got {' '.join(args.words)}", file=sys.stderr)
        return 2
    loan_id = words[0]
    ledger = Ledger(stack.table("NotificationsTableName"))
    if action == "verify":
        return _verify(loan_id, stack, ledger, args.json)
    evidence = export(loan_id, ledger=ledger, cases=ReviewCases(stack.table("ReviewCasesTableName")))
    if action == "export" or args.json:
        print(json.dumps(evidence, indent=2, default=str, ensure_ascii=False))
    else:
        print(as_table(evidence))
    if not evidence["notices"]:
        print(f"no notices for loan {loan_id}", file=sys.stderr)
        return 1
    if action == "export" and args.archive:
        archived = archive(evidence, s3=stack.client("s3"), bucket=stack.outputs["EvidenceArchiveBucketName"])
        print(f"archived to s3://{archived['bucket']}/{archived['key']} version {archived['version_id']}, "
              f"{archived['mode']} lock until {archived['retain_until']}", file=sys.stderr)
    return 0


def _verify(loan_id: str, stack: Stack, ledger: Ledger, as_json: bool) -> int:
    archives = None
    bucket = stack.outputs.get("EvidenceArchiveBucketName")
    if bucket:
        try:
            archives = archived_heads(loan_id, s3=stack.client("s3"), bucket=bucket)
        except (ClientError, BotoCoreError) as err:
            print(f"warning: the archived exports were not checked: {err}", file=sys.stderr)
    result = verify(loan_id, ledger=ledger, archives=archives)
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    if not result["notices"]:
        print(f"no notices for loan {loan_id}", file=sys.stderr)
        return 1
    if not as_json:
        for notice in result["notices"]:
            if notice["problems"]:
                print(f"FAILED {notice['notification_id']}: " + "; ".join(notice["problems"]))
            else:
                print(f"ok     {notice['notification_id']}: {notice['entries']} entries, head {notice['head']}")
        print(f"{result['archives_checked']} archived export(s) checked against the chains")
    return 0 if result["intact"] else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stack = Stack(args.stack_name, args.region, args.endpoint_url)
    if args.command == "cases":
        return _list(stack, args.json) if args.action == "list" else _resolve(stack, args)
    return _evidence(stack, args)
