"""loan-notify-ops: review cases, notice executions, the stream failure queue and proof of notice.

  loan-notify-ops cases list [--json]
  loan-notify-ops cases resolve CASE_ID --decision reached_by_phone|contact_corrected|closed --note TEXT --by NAME
                  [--corrected phone email]
  loan-notify-ops executions list [--status RUNNING|FAILED|...] [--older-than 30m]
                  [--waiting review|confirmation|window|queue] [--limit 100] [--json]
  loan-notify-ops executions show NOTICE_ID [--json]
  loan-notify-ops executions redrive NOTICE_ID [--json]
  loan-notify-ops stream-failures list|redrive [--json]
  loan-notify-ops evidence [show] LOAN_ID [--json]
  loan-notify-ops evidence verify LOAN_ID [--json]
  loan-notify-ops evidence export LOAN_ID [--archive]
  loan-notify-ops local outbox [--to PHONE_OR_EMAIL] [--json]

Which stack: --endpoint-url, else LOAN_NOTIFY_ENDPOINT_URL, else `make local` if it runs (it leaves
.loan-notify-local.json in the directory it was started from), else AWS with your profile and region
(--stack-name, default loan-notify-local; LOAN_NOTIFY_STACK). Exit 0: done; 1: the thing asked about is not
there or not finished (e.g. no notices for a loan); 2: the command could not run (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from loan_notify.archive import archive, archived_heads
from loan_notify.borrowers import Borrowers
from loan_notify.evidence import as_table, export, verify
from loan_notify.executions import StepFunctionsStarter, TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.models import CASE_ID_PATTERN
from loan_notify.review import CaseNotOpen, Decision, DecisionConflict, ReviewCases, resolve_case
from loan_notify.safe_text import printable
from loan_notify.vocabulary import Channel
from loan_notify_ops import executions, local, stream_failures
from loan_notify_ops.stack import OpsError, Stack, discover

_CORRECTED = {"phone": Channel.SMS, "email": Channel.EMAIL}


class _Streams:
    """Where this run writes (main's `out` and `err`; sys.stdout/sys.stderr by default)."""

    out: TextIO | None = None
    err: TextIO | None = None


def _say(text: str, err: bool = False) -> None:
    stream = (_Streams.err or sys.stderr) if err else (_Streams.out or sys.stdout)
    stream.write(f"{text}\n")
    stream.flush()


def _case_id(value: str) -> str:
    if not re.fullmatch(CASE_ID_PATTERN, value):
        raise argparse.ArgumentTypeError(f"not a case id: {printable(value)}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loan-notify-ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", default=None, help="default: make local's stack, or loan-notify-local")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--endpoint-url", default=None, help="default: LOAN_NOTIFY_ENDPOINT_URL, then make local")
    commands = parser.add_subparsers(dest="command", required=True)
    cases = commands.add_parser("cases", help="review cases").add_subparsers(dest="action", required=True)
    listing = cases.add_parser("list", help="open cases (oldest first)")
    listing.add_argument("--json", action="store_true")
    resolve = cases.add_parser("resolve", help="record a decision and resume the waiting execution")
    resolve.add_argument("case_id", type=_case_id)
    resolve.add_argument("--decision", required=True, choices=[d.value for d in Decision])
    resolve.add_argument("--note", required=True, help="what you did; kept in the case and the ledger")
    resolve.add_argument("--by", required=True, help="who decided")
    resolve.add_argument("--corrected", nargs="*", default=[], choices=sorted(_CORRECTED),
                         help="with contact_corrected: which contact the platform fixed")
    _executions_parser(commands)
    failures = commands.add_parser("stream-failures", help="Loans stream records the router gave up on")
    failure_actions = failures.add_subparsers(dest="action", required=True)
    failure_actions.add_parser("list", help="the failure queue's batches and their records").add_argument(
        "--json", action="store_true")
    failure_actions.add_parser("redrive", help="replay them through the router (idempotent)").add_argument(
        "--json", action="store_true")
    _evidence_parser(commands)
    local_cloud = commands.add_parser("local", help="the local cloud only (make local)")
    local_actions = local_cloud.add_subparsers(dest="action", required=True)
    outbox = local_actions.add_parser("outbox", help="the SMS and emails the simulated providers sent")
    outbox.add_argument("--to", help="only those to this phone number or email address")
    outbox.add_argument("--json", action="store_true")
    return parser


def _executions_parser(commands: Any) -> None:
    actions = commands.add_parser("executions", help="notice executions (Step Functions)").add_subparsers(
        dest="action", required=True)
    listing = actions.add_parser("list", help="executions by notice id, with what each waits on and until when")
    listing.add_argument("--status", choices=executions.STATUSES, type=str.upper)
    listing.add_argument("--older-than", type=executions.parse_duration, metavar="DURATION",
                         help="started longer ago than this: 90s, 30m, 2h, 1d")
    listing.add_argument("--waiting", choices=sorted(set(executions.WAITS.values())),
                         help="only running executions waiting on this")
    listing.add_argument("--limit", type=int, default=100, help="at most this many, the newest (default 100)")
    listing.add_argument("--json", action="store_true")
    for action, text in (("show", "the execution's timeline, with the ledger's channel, provider and causes"),
                         ("redrive", "restart a FAILED, TIMED_OUT or ABORTED execution from the state it failed in")):
        command = actions.add_parser(action, help=text)
        command.add_argument("notice_id")
        command.add_argument("--json", action="store_true")


def _evidence_parser(commands: Any) -> None:
    evidence = commands.add_parser(
        "evidence", help="proof of notice for a loan: show (default), verify its hash chains, export (--archive)",
        description="evidence [show] LOAN_ID [--json] | evidence verify LOAN_ID [--json] | "
                    "evidence export LOAN_ID [--archive]")
    evidence.add_argument("words", nargs="+", metavar="[show|verify|export] LOAN_ID")
    evidence.add_argument("--json", action="store_true")
    evidence.add_argument("--archive", action="store_true",
                          help="with export: also write it to the stack's Object Lock bucket (compliance mode)")


def _list(stack: Stack, as_json: bool) -> int:
    cases = ReviewCases(stack.table("ReviewCasesTableName")).open_cases()
    now = datetime.now(timezone.utc).isoformat()
    rows = [{**{k: c.get(k) for k in ("case_id", "loan_id", "status", "reason", "opened_at", "due_at", "alerts")},
             "resolving": c.get("pending", {}).get("decision")} for c in cases]
    if as_json:
        _say(json.dumps(rows, default=str, indent=2))
        return 0
    if not rows:
        _say("no open review cases")
        return 0
    for row in rows:
        row = {k: printable(v) if isinstance(v, str) else v for k, v in row.items()}  # never raw on a terminal
        overdue = " OVERDUE" if row["due_at"] <= now else ""
        _say(f"{row['case_id']}  loan {row['loan_id']} {row['status']}  {row['reason']}  opened {row['opened_at']}"
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
        _say(f"error: {printable(err)}", err=True)
        return 2
    except (ClientError, BotoCoreError) as err:
        _say(f"error: {printable(err)}\nThe decision is kept on the case as pending: run the same command again to "
             "finish it.", err=True)
        return 1
    _say(json.dumps(result))
    _say(("already resolved: " if result["already_resolved"] else "") + result["outcome"], err=True)
    return 0


_EVIDENCE_ACTIONS = ("show", "verify", "export")


def _evidence(stack: Stack, args: argparse.Namespace) -> int:
    """Exit 1 when the loan has no notice, or (verify) when any chain fails; 2 on a usage error."""
    words = list(args.words)
    action = words.pop(0) if len(words) == 2 and words[0] in _EVIDENCE_ACTIONS else "show"
    if len(words) != 1:
        _say(f"error: expected [{'|'.join(_EVIDENCE_ACTIONS)}] LOAN_ID, got {printable(' '.join(args.words))}",
             err=True)
        return 2
    loan_id = words[0]
    ledger = Ledger(stack.table("NotificationsTableName"))
    if action == "verify":
        return _verify(loan_id, stack, ledger, args.json)
    evidence = export(loan_id, ledger=ledger, cases=ReviewCases(stack.table("ReviewCasesTableName")))
    # JSON escapes every non-ASCII character (C1 controls, bidirectional overrides); the table shows them escaped
    if action == "export" or args.json:
        _say(json.dumps(evidence, indent=2, default=str))
    elif evidence["notices"] or evidence["borrower_reports"]:  # nothing on record: no empty header, only the error
        _say(printable(as_table(evidence), keep_newlines=True))
    if not evidence["notices"]:
        _say(f"no notices for loan {printable(loan_id)}", err=True)
        return 1
    if action == "export" and args.archive:
        archived = archive(evidence, s3=stack.client("s3"), bucket=stack.outputs["EvidenceArchiveBucketName"])
        _say(f"archived to s3://{archived['bucket']}/{archived['key']} version {archived['version_id']}, "
             f"{archived['mode']} lock until {archived['retain_until']}", err=True)
    return 0


def _verify(loan_id: str, stack: Stack, ledger: Ledger, as_json: bool) -> int:
    archives = None
    bucket = stack.outputs.get("EvidenceArchiveBucketName")
    if bucket:
        try:
            archives = archived_heads(loan_id, s3=stack.client("s3"), bucket=bucket)
        except (ClientError, BotoCoreError) as err:
            _say(f"warning: the archived exports were not checked: {err}", err=True)
    result = verify(loan_id, ledger=ledger, archives=archives)
    if as_json:
        _say(json.dumps(result, indent=2, default=str))
    if not result["notices"]:
        _say(f"no notices for loan {printable(loan_id)}", err=True)
        return 1
    if not as_json:
        for notice in result["notices"]:
            if notice["problems"]:
                _say(f"FAILED {notice['notification_id']}: " + printable("; ".join(notice["problems"])))
            else:
                _say(f"ok     {notice['notification_id']}: {notice['entries']} entries, head {notice['head']}")
        _say(f"{result['archives_checked']} archived export(s) checked against the chains")
    return 0 if result["intact"] else 1


def _print(value: Any, as_json: bool, text: Any) -> None:
    _say(json.dumps(value, indent=2, default=str, ensure_ascii=False) if as_json else text(value))


def _executions(stack: Stack, args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = executions.list_executions(stack, status=args.status, older_than=args.older_than,
                                          waiting=args.waiting, limit=args.limit)
        _print(rows, args.json, executions.format_list)
    elif args.action == "show":
        _print(executions.show(stack, args.notice_id), args.json, executions.format_show)
    else:
        _print(executions.redrive(stack, args.notice_id), args.json,
               lambda r: f"redriven: notice {r['notice_id']} continues from the state it failed in\n{r['console']}")
    return 0


def _stream_failures(stack: Stack, args: argparse.Namespace) -> int:
    if args.action == "list":
        _print(stream_failures.list_failures(stack), args.json, stream_failures.format_list)
        return 0
    results = stream_failures.redrive(stack)
    _print(results, args.json, stream_failures.format_redrive)
    return 0 if all(r["deleted"] for r in results) else 1


def _run(args: argparse.Namespace) -> int:
    stack = Stack(discover(args.stack_name, args.region, args.endpoint_url))
    if args.command == "cases":
        return _list(stack, args.json) if args.action == "list" else _resolve(stack, args)
    if args.command == "executions":
        return _executions(stack, args)
    if args.command == "stream-failures":
        return _stream_failures(stack, args)
    if args.command == "local":
        _print(local.outbox(stack, args.to), args.json, local.format_outbox)
        return 0
    return _evidence(stack, args)


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; exit status as documented in the usage text. `out`/`err`: where to write (tests)."""
    args = _parser().parse_args(argv)
    _Streams.out, _Streams.err = out, err
    try:
        return _run(args)
    except OpsError as problem:
        _say(f"error: {problem}", err=True)
    except (ClientError, BotoCoreError) as problem:
        _say(f"error: {type(problem).__name__}: {problem}", err=True)
    except KeyboardInterrupt:
        _say("error: interrupted", err=True)
    finally:
        _Streams.out = _Streams.err = None
    return 2
