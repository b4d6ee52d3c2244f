"""`make local`: the local cloud behind 127.0.0.1, driven by plain boto3 with an endpoint URL."""

import json
import os
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
    return tmp_path_factory.mktemp("local") / "state.json"


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
