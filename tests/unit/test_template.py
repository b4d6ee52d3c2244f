"""The template is the single source of truth: check the facts other code relies on."""

import json
from pathlib import Path

import pytest

from loan_notify.vocabulary import LoanStatus
from localcloud.check_asl import problems
from localcloud.deploy import load_sam

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_sam(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}


def _modify_pattern(statuses):
    branches = [{"OldImage": {"status": {"S": [s]}}, "NewImage": {"status": {"S": [{"anything-but": [s]}]}}}
                for s in statuses]
    branches.append({"OldImage": {"status": {"S": [{"anything-but": list(statuses)}]}}})
    branches.append({"OldImage": {"status": {"S": [{"exists": False}]}}})
    return {"eventName": ["MODIFY"], "dynamodb": {"$or": branches}}


def _stream_event():
    return RESOURCES["StreamRouterFunction"]["Properties"]["Events"]["LoanStatusChanged"]["Properties"]


def test_stream_filter_covers_exactly_the_domain_status_list():
    patterns = [json.loads(f["Pattern"]) for f in _stream_event()["FilterCriteria"]["Filters"]]
    assert patterns == [{"eventName": ["INSERT"]}, _modify_pattern([s.value for s in LoanStatus])]


def test_stream_trigger_cannot_block_the_shard():
    props = _stream_event()
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < props["MaximumRetryAttempts"] <= 10
    assert props["BisectBatchOnFunctionError"] is True
    assert props["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_handler_resolves_to_a_function(logical_id):
    props = FUNCTIONS[logical_id]["Properties"]
    module, _, function = props["Handler"].rpartition(".")
    source = (ROOT / props["CodeUri"] / f"{module}.py").read_text()
    assert f"def {function}(" in source


def test_runtime_and_encryption():
    assert TEMPLATE["Globals"]["Function"]["Runtime"] == "python3.13"
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] == "AWS::DynamoDB::Table":
            assert resource["Properties"]["SSESpecification"]["SSEEnabled"] is True, logical_id
        if resource["Type"] == "AWS::SQS::Queue":
            assert resource["Properties"]["SqsManagedSseEnabled"] is True, logical_id


def test_no_resource_name_is_hard_coded():
    name_properties = {"TableName", "FunctionName", "QueueName", "TopicName", "StateMachineName", "Name",
                       "LayerName", "AlarmName"}
    for logical_id, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        fixed = {k for k in name_properties & set(props) if isinstance(props[k], str)}
        assert not fixed, f"{logical_id} hard-codes {fixed}: two stacks would collide in one account"


def test_asl_placeholders_match_substitutions():
    assert problems(ROOT / "template.yaml") == []
