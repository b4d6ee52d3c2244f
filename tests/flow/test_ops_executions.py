"""The ops command on notice executions: what each waits on, a timeline, and RedriveExecution."""

import json
import time

import pytest

from tests.flow.conftest import ops_run, unique

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("no_make_local")]  # the in-process cloud


def _json(*argv):
    code, out, err = ops_run(*argv, "--json")
    return code, (json.loads(out) if out.strip() else None), err


def _parked_on_review(cloud, platform):
    borrower = platform.borrower(phone="+9991234567", email=None)
    loan_id = unique("L")
    platform.status(loan_id, borrower["borrower_id"], "APPROVED", 1)
    cloud.wait_idle()
    (notice,) = platform.notices(loan_id)
    assert notice["state"] == "NEEDS_REVIEW"
    return notice


def test_list_says_what_a_running_notice_waits_on_and_show_gives_its_timeline(cloud, platform):
    # GIVEN a notice no channel could deliver: its execution waits on a review case
    notice = _parked_on_review(cloud, platform)
    nid = notice["notification_id"]
    # WHEN ops list the executions waiting on a person
    code, rows, _ = _json("executions", "list", "--waiting", "review")
    # THEN the notice is there by its id, with the case's due time as "until"
    assert code == 0
    (row,) = [r for r in rows if r["notice_id"] == nid]
    case = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": notice["case_id"]})["Item"]
    assert (row["status"], row["waiting"], row["until"]) == ("RUNNING", "review", case["due_at"])
    assert all(r["waiting"] == "review" for r in rows)
    _, confirming, _ = _json("executions", "list", "--waiting", "confirmation")
    assert nid not in [r["notice_id"] for r in confirming]
    _, old, _ = _json("executions", "list", "--status", "RUNNING", "--older-than", "1h")
    assert nid not in [r["notice_id"] for r in old]
    # AND show gives the timeline with the channel and provider from the ledger and the console link
    code, shown, _ = _json("executions", "show", nid)
    assert code == 0 and shown["status"] == "RUNNING" and shown["ledger_state"] == "NEEDS_REVIEW"
    states = [r.get("state") for r in shown["timeline"]]
    assert states[:3] == [None, "Prepare notice", "Send now?"] and states[-1] == "Open a review case"
    queued = next(r for r in shown["timeline"] if r.get("state") == "Queue the send")
    assert (queued["channel"], queued["provider"], queued["result"]) == \
        ("SMS", f"sms-voice@{cloud.region}", "FAILED_PERMANENT")
    failed = next(r for r in shown["timeline"] if r["event"] == "TaskFailed")
    # the cause the sender told the execution (the ledger's reason stands in only where an event has none)
    assert failed["error"] == "PermanentChannelError" and failed["cause"].startswith("invalid_phone: ")
    assert shown["console"] == (f"https://{cloud.region}.console.aws.amazon.com/states/home?region={cloud.region}"
                                f"#/v2/executions/details/{cloud.execution_arn(shown['execution'])}")
    code, text, _ = ops_run("executions", "show", nid)
    assert code == 0
    assert "Open a review case" in text and "console.aws.amazon.com" in text


def test_redrive_continues_an_aborted_execution_from_the_state_it_stopped_in(cloud, platform):
    # GIVEN an execution stopped while it waited on a review case
    notice = _parked_on_review(cloud, platform)
    nid, name = notice["notification_id"], notice["execution_name"]
    sfn = cloud.client("stepfunctions")
    sfn.stop_execution(executionArn=cloud.execution_arn(name))
    assert cloud.wait_execution(name)["status"] == "ABORTED"
    before = cloud.history(name)
    code, aborted, _ = _json("executions", "list", "--status", "ABORTED")
    assert code == 0 and nid in [r["notice_id"] for r in aborted]
    assert all(r["status"] == "ABORTED" and r["waiting"] is None for r in aborted)
    assert len(_json("executions", "list", "--limit", "1")[1]) == 1
    # WHEN ops redrive it
    code, redriven, err = _json("executions", "redrive", nid)
    assert code == 0, err
    # THEN the same execution runs again from "Open a review case", keeping its history, and its open case takes
    # the new wait's token (the same obligation: no second case, no second alert)
    assert sfn.describe_execution(executionArn=cloud.execution_arn(name))["status"] == "RUNNING"
    case1 = f"{nid}-case1"
    token_before = cloud.table("ReviewCasesTableName").get_item(Key={"case_id": case1})["Item"]["task_token"]
    deadline = time.monotonic() + 30
    while cloud.table("ReviewCasesTableName").get_item(Key={"case_id": case1})["Item"]["task_token"] == token_before:
        assert time.monotonic() < deadline, f"the redriven step did not re-arm the case: {cloud.last_events(name)}"
        time.sleep(0.02)
    cloud.wait_idle()
    events = cloud.history(name)
    assert events[:len(before)] == before
    after = events[len(before):]
    assert after[0]["type"] == "ExecutionRedriven"
    assert [e["stateEnteredEventDetails"]["name"] for e in after if "stateEnteredEventDetails" in e] == \
        ["Open a review case"]
    assert "Prepare notice" not in json.dumps(after, default=str)  # the successful states before it did not run again
    # AND a running execution cannot be redriven (exit 2, one line)
    code, _, err = _json("executions", "redrive", nid)
    assert code == 2 and err.count("\n") == 1 and "only FAILED, TIMED_OUT or ABORTED" in err
    # AND the reviewer's answer on that one case finishes it
    from loan_notify.review import ReviewCases

    cases = sorted(c["case_id"] for c in ReviewCases(cloud.table("ReviewCasesTableName")).open_cases()
                   if c.get("notification_id") == nid)
    assert cases == [case1]
    assert ops_run("cases", "resolve", case1, "--decision", "closed", "--note", "withdrawn",
                   "--by", "ops.test")[0] == 0
    assert cloud.wait_execution(name)["status"] == "SUCCEEDED"


def test_unknown_notice_and_missing_stack_are_one_line_and_exit_2(cloud):
    code, _, err = ops_run("executions", "show", "L-nothing-APPROVED-v1-000")
    assert code == 2
    assert err.startswith("error: no execution for notice") and err.count("\n") == 1
    code, _, err = ops_run("--stack-name", "no-such-stack", "cases", "list")
    assert code == 2
    assert err.startswith("error: stack no-such-stack not found") and "Traceback" not in err
