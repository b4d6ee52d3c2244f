"""`make local`: the local cloud behind 127.0.0.1, driven by plain boto3 with an endpoint URL."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from localcloud.cloud import free_port

pytestmark = pytest.mark.flow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server_state(tmp_path_factory):
    """Where this test's server says where it listens (never the repository's own file: `make local` may run)."""
    return tmp_path_factory.mktemp("local") / ".loan-notify-local.json"


@pytest.fixture(scope="module")
def server(server_state):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "shared")])}
    # both ports asked of the OS: "port + 1" (the server's default for the API) may already be taken
    api_port = free_port()
    while api_port == port:
        api_port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "localcloud.server", "--port", str(port), "--api-port",
                                str(api_port), "--time-scale", "0", "--state-file", str(server_state)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = None
    deadline = time.monotonic() + 60
    for line in process.stdout:
        if line.startswith('{"ready"'):
            ready = json.loads(line)
            break
        if time.monotonic() > deadline:
            break
    if ready is None:
        process.kill()
        pytest.fail(f"local cloud server did not start: {process.stderr.read()[-2000:]}")
    yield ready["endpoint"]
    process.terminate()
    process.wait(timeout=10)


def test_boto3_against_the_endpoint_sees_the_whole_flow(server):
    kwargs = {"endpoint_url": server, "region_name": "us-east-1", "aws_access_key_id": "local",
              "aws_secret_access_key": "local"}
    # GIVEN the stack's outputs, read through CloudFormation like on a real account
    stack = boto3.client("cloudformation", **kwargs).describe_stacks(StackName="loan-notify-local")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert {"LoansTableName", "BorrowersTableName", "NotificationsTableName", "NotifyStateMachineArn"} <= set(outputs)
    dynamodb = boto3.resource("dynamodb", **kwargs)
    # WHEN a borrower and a status change are written
    dynamodb.Table(outputs["BorrowersTableName"]).put_item(Item={
        "borrower_id": "B-server", "name": "Grace Hopper", "locale": "en-US", "phone": "+8613800138000",
        "email": "grace@example.com"})
    dynamodb.Table(outputs["LoansTableName"]).put_item(Item={
        "loan_id": "L-server", "borrower_id": "B-server", "status": "APPROVED", "version": 1,
        "updated_at": "2026-11-29T08:00:00Z"})
    # THEN the execution SUCCEEDED and the ledger item records the SMS attempt
    sfn = boto3.client("stepfunctions", **kwargs)
    deadline = time.monotonic() + 30
    while True:
        executions = sfn.list_executions(stateMachineArn=outputs["NotifyStateMachineArn"])["executions"]
        if executions and executions[0]["status"] != "RUNNING":
            break
        assert time.monotonic() < deadline, f"no finished execution after 30s: {executions}"
        time.sleep(0.05)
    (execution,) = executions
    assert execution["status"] == "SUCCEEDED" and execution["name"].startswith("L-server-APPROVED-v1-")
    items = dynamodb.Table(outputs["NotificationsTableName"]).scan()["Items"]
    (notice,) = items
    assert notice["state"] == "DELIVERED"
    assert [(a["channel"], a["result"]) for a in notice["attempts"]] == [("SMS", "SENT")]
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    assert history[-1]["type"] == "ExecutionSucceeded"
    assert "+8613800138000" not in json.dumps(history, default=str)


def test_ops_command_and_evidence_export_against_the_server(server):
    """The ops command is an AWS client like any other: it works against the endpoint with plain credentials."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "shared")]),
           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    kwargs = {"endpoint_url": server, "region_name": "us-east-1", "aws_access_key_id": "local",
              "aws_secret_access_key": "local"}
    stack = boto3.client("cloudformation", **kwargs).describe_stacks(StackName="loan-notify-local")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    dynamodb = boto3.resource("dynamodb", **kwargs)
    # GIVEN a notice nobody can receive: a review case opens
    dynamodb.Table(outputs["BorrowersTableName"]).put_item(Item={
        "borrower_id": "B-nobody", "locale": "en-US", "phone": "+9991234567"})
    dynamodb.Table(outputs["LoansTableName"]).put_item(Item={
        "loan_id": "L-ops", "borrower_id": "B-nobody", "status": "REJECTED", "version": 1,
        "updated_at": "2026-11-29T08:00:00Z"})

    def ops(*args):
        return subprocess.run([sys.executable, "-m", "loan_notify_ops", "--endpoint-url", server, *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)

    deadline = time.monotonic() + 30
    while True:
        listed = ops("cases", "list", "--json")
        cases = [c for c in json.loads(listed.stdout or "[]") if c["loan_id"] == "L-ops"]
        if cases:
            break
        assert time.monotonic() < deadline, f"no review case after 30s: {listed.stderr}"
        time.sleep(0.1)
    # WHEN ops resolve it from the command line
    resolved = ops("cases", "resolve", cases[0]["case_id"], "--decision", "closed", "--note", "loan withdrawn",
                   "--by", "ops.test")
    assert resolved.returncode == 0, resolved.stderr
    assert json.loads(resolved.stdout)["execution_resumed"] is True
    # THEN the evidence export tells the story, as JSON and as a table
    deadline = time.monotonic() + 30
    while True:
        exported = ops("evidence", "L-ops", "--json")
        notice = json.loads(exported.stdout)["notices"][0]
        if notice["outcome"]["state"] == "CLOSED":
            break
        assert time.monotonic() < deadline, exported.stdout
        time.sleep(0.1)
    assert notice["review_cases"][0]["decision"] == "closed"
    assert notice["human_actions"][0]["note"] == "loan withdrawn"
    table = ops("evidence", "L-ops")
    assert table.returncode == 0 and "review case" in table.stdout


def _readme_ops_lines():
    """Every `loan-notify-ops` line of the README's bash blocks: (line, runnable) where a line with a <placeholder>
    is only parsed."""
    import re

    readme = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("loan-notify-ops "):
                lines.append((line, "<" not in line))
    return lines


def test_every_ops_command_in_the_readme_runs_verbatim_against_make_local(server, server_state, monkeypatch):
    """The README's ops walk-through, word for word: its data written as its `aws` lines do, then each
    `loan-notify-ops` line run from the directory `make local` was started in (found through its state file): the
    first as its own process, the others in this one (the same entry point, without a second of start-up each)."""
    import io
    import shlex
    import shutil

    from loan_notify_ops.cli import _parser
    from loan_notify_ops.cli import main as ops_main

    kwargs = {"endpoint_url": server, "region_name": "us-east-1", "aws_access_key_id": "local",
              "aws_secret_access_key": "local"}
    stack = boto3.client("cloudformation", **kwargs).describe_stacks(StackName="loan-notify-local")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    dynamodb = boto3.resource("dynamodb", **kwargs)
    borrowers, loans = dynamodb.Table(outputs["BorrowersTableName"]), dynamodb.Table(outputs["LoansTableName"])
    borrowers.put_item(Item={"borrower_id": "B-1", "locale": "en-US", "phone": "+8613800138000"})
    borrowers.put_item(Item={"borrower_id": "B-2", "locale": "en-US", "phone": "+9991234567"})
    loans.put_item(Item={"loan_id": "L-1", "borrower_id": "B-1", "status": "APPROVED", "version": 1,
                         "updated_at": "2026-11-29T08:00:00Z"})
    loans.put_item(Item={"loan_id": "L-2", "borrower_id": "B-2", "status": "REJECTED", "version": 1,
                         "updated_at": "2026-11-29T08:00:00Z"})
    cases = dynamodb.Table(outputs["ReviewCasesTableName"])
    deadline = time.monotonic() + 30
    while not cases.get_item(Key={"case_id": "L-2-REJECTED-v1-0fb46daf18-case1"}).get("Item"):
        assert time.monotonic() < deadline, "L-2's review case never opened"
        time.sleep(0.05)
    # the console script when it is installed (make install), else the same entry point from this interpreter
    script = shutil.which("loan-notify-ops", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "loan_notify_ops"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOAN_NOTIFY_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "layers" / "shared")])
    lines = _readme_ops_lines()
    assert sum(runnable for _, runnable in lines) >= 10
    first = next(line for line, runnable in lines if runnable)
    ran = subprocess.run([*command, *shlex.split(first)[1:]], cwd=server_state.parent, env=env, capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, f"{first}: {ran.returncode} {ran.stderr}"
    monkeypatch.chdir(server_state.parent)
    for name in [k for k in os.environ if k.startswith("LOAN_NOTIFY_")]:
        monkeypatch.delenv(name)
    outputs_seen = {first: ran.stdout}
    for line, runnable in lines:
        argv = shlex.split(line)[1:]
        if not runnable:
            _parser().parse_args([re.sub(r"<[^>]+>", "X", a) for a in argv])  # a documented usage that parses
            continue
        out, err = io.StringIO(), io.StringIO()
        code = ops_main(argv, out=out, err=err)
        assert code == 0, f"{line}: {code} {err.getvalue()}"
        outputs_seen[line] = out.getvalue()
    assert "L-2-REJECTED-v1-0fb46daf18" in outputs_seen["loan-notify-ops executions list --waiting review"]
    assert "Open a review case" in outputs_seen["loan-notify-ops executions show L-2-REJECTED-v1-0fb46daf18"]
    assert json.loads(outputs_seen["loan-notify-ops executions show L-1-APPROVED-v1-691a8f1761 --json"])["status"] \
        in ("RUNNING", "SUCCEEDED")
    assert "verification" not in outputs_seen["loan-notify-ops local outbox --to +8613800138000"]
    assert "L-1" in outputs_seen["loan-notify-ops local outbox --to +8613800138000"]


def test_an_unreachable_endpoint_or_a_missing_stack_is_one_line_and_exit_2(server):
    import io

    from loan_notify_ops.cli import main as ops_main

    for argv, expected in (
            (["--endpoint-url", f"http://127.0.0.1:{free_port()}", "cases", "list"], "cannot reach"),
            (["--endpoint-url", server, "--stack-name", "nope", "executions", "list"], "stack nope not found")):
        out, err = io.StringIO(), io.StringIO()
        assert ops_main(argv, out=out, err=err) == 2 and out.getvalue() == ""
        assert err.getvalue().startswith(f"error: {expected}") and err.getvalue().count("\n") == 1, err.getvalue()
