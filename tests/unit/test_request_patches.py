"""Patch 34: requests that take moto's usual path are not SigV4-signed in full, and each URL's handler is kept.

The same requests run against the session's local cloud with the patch and with botocore's signer and moto's URL
search put back (monkeypatch), and what boto3 parsed is compared, across services, regions and an error. The
Authorization header a request carries names the same credential scope either way; only a request moto's mock
answers gets the signature of zeros.
"""

from __future__ import annotations

import re

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.core.botocore_stubber import BotocoreStubber

from localcloud import patches

SCOPE = re.compile(r"^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/eu-west-1/states/aws4_request, "
                   r"SignedHeaders=[a-z0-9;-]+, Signature=([0-9a-f]{64})$")


def _signed(url: str) -> str:
    request = AWSRequest(method="POST", url=url, data=b'{"a": 1}',
                         headers={"Content-Type": "application/x-amz-json-1.0"})
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret", "token-1"), "states", "eu-west-1").add_auth(request)
    assert request.headers["X-Amz-Security-Token"] == "token-1" and request.headers["X-Amz-Date"]
    return request.headers["Authorization"]


def test_only_a_request_the_mock_answers_gets_a_signature_of_zeros(cloud, monkeypatch):
    import botocore.auth
    from moto.core.config import default_user_config

    moment = botocore.auth.get_current_datetime()
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)  # one timestamp for every signature
    mocked = SCOPE.match(_signed("https://states.eu-west-1.amazonaws.com/"))
    assert mocked and mocked.group(1) == "0" * 64
    elsewhere = SCOPE.match(_signed("http://127.0.0.1:4566/"))  # a server-mode endpoint: signed for real
    assert elsewhere and elsewhere.group(1) != "0" * 64
    with monkeypatch.context() as botocore_only:
        botocore_only.setattr(SigV4Auth, "add_auth", patches._originals[(SigV4Auth, "add_auth")])
        real = SCOPE.match(_signed("https://states.eu-west-1.amazonaws.com/"))
    assert real and real.group(1) != "0" * 64
    # everything but the signature is what botocore writes: the credential scope and the signed headers
    assert mocked.group(0).rsplit("Signature=", 1)[0] == real.group(0).rsplit("Signature=", 1)[0]
    # when moto could check a signature (its IAM checks on) or pass a request through to AWS, it is signed for real
    with monkeypatch.context() as checking:
        checking.setattr("moto.settings.INITIAL_NO_AUTH_ACTION_COUNT", 5)
        assert SCOPE.match(_signed("https://states.eu-west-1.amazonaws.com/")).group(1) == real.group(1)
    with monkeypatch.context() as passing:
        passing.setitem(default_user_config, "core", {**default_user_config.get("core", {}),
                                                      "passthrough": {"urls": [r"https://nothing\\.example/.*"]}})
        assert SCOPE.match(_signed("https://states.eu-west-1.amazonaws.com/")).group(1) == real.group(1)


def _requests(cloud) -> list:
    """Reads and writes across the services that take moto's usual path, in both of the stack's regions, and an
    error with its code."""
    answers = []
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="patch-34-scratch")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "test"}})
    received = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MaxNumberOfMessages=10)["Messages"]
    answers.append([(m["Body"], m["MessageAttributes"]) for m in received])
    sqs.delete_queue(QueueUrl=url)
    answers.append(sorted(q.rsplit("/", 1)[1] for q in sqs.list_queues().get("QueueUrls", [])))
    if cloud.backup_region and cloud.backup_region != cloud.region:
        backup_sns = boto3.client("sns", region_name=cloud.backup_region, endpoint_url=cloud.endpoint_url)
        answers.append(sorted(t["TopicArn"].split(":")[3:5] for t in backup_sns.list_topics()["Topics"]))
    sfn = cloud.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=cloud.outputs["NotifyStateMachineArn"])
    answers.append((machine["name"], machine["status"], machine["stateMachineArn"].split(":")[4]))
    with pytest.raises(sfn.exceptions.ClientError) as missing:
        sfn.describe_execution(executionArn=cloud.outputs["NotifyStateMachineArn"].replace(
            ":stateMachine:", ":execution:") + ":no-such-execution")
    answers.append((missing.value.response["Error"]["Code"],
                    missing.value.response["ResponseMetadata"]["HTTPStatusCode"]))
    functions = cloud.client("lambda").list_functions()["Functions"]
    answers.append(sorted(f["FunctionName"].split("-")[3] for f in functions))
    topics = cloud.client("sns").list_topics()["Topics"]
    answers.append(sorted(t["TopicArn"].split(":")[5].split("-")[3] for t in topics))
    return answers


def test_moto_answers_the_same_with_the_patch_and_without_it(cloud, monkeypatch):
    patched = _requests(cloud)
    with monkeypatch.context() as moto_only:
        moto_only.setattr(SigV4Auth, "add_auth", patches._originals[(SigV4Auth, "add_auth")])
        moto_only.setattr(BotocoreStubber, "process_request", patches._originals[(BotocoreStubber, "process_request")])
        plain = _requests(cloud)
    assert patched == plain
    messages, queues, backup_topics, machine, missing, functions, topics = patched
    assert messages == [("hello", {"kind": {"DataType": "String", "StringValue": "test"}})]
    assert any("OutboxCriticalQueue" in q for q in queues) and "patch-34-scratch" not in "".join(queues)
    assert backup_topics and all(region == cloud.backup_region for region, _ in backup_topics)
    assert machine[1:] == ("ACTIVE", "123456789012") and missing == ("ExecutionDoesNotExist", 400)
    assert "SendNoticeFunction" in functions and topics
    assert any(url.endswith("amazonaws.com/") for url in patches._matched_urls)  # the handlers were kept


VALUES = [
    {"S": "Zoë 张"}, {"N": "12.50"}, {"BOOL": False}, {"NULL": True}, {"SS": ["a", "b"]}, {"NS": ["1", "2.5"]},
    {"M": {"seq": {"N": "1"}, "change": {"S": '{"what": "opened"}'}, "ops": {"L": [{"L": [{"S": "set"}]}]}}},
    {"L": [{"M": {}}, {"L": []}, {"S": ""}]},
    {"B": b"\x00\x01"}, {"BS": [b"a", "b"]}, {"M": {"blob": {"B": "text as blob"}}},  # binary: botocore's way
    {"S": 5}, {"N": 1.5}, {"S": None}, {"BOOL": "yes"}, {"X": "unknown"}, {}, {"S": "a", "N": "1"},  # refused or odd
    {"L": ({"S": "tuple"},)}, {"SS": ("a",)}, {"M": {1: {"S": "int key"}}}, {"M": {"k": None}}, "not a map",
]


def _botocore_view(values: list) -> list:
    """What botocore's validator reports and its serializer writes for each value, put in an item and a key."""
    import botocore.session
    from botocore.serialize import create_serializer
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("dynamodb").operation_model("PutItem")
    seen = []
    for value in values:
        params = {"TableName": "t", "Item": {"a": value, "pk": {"S": "k"}}}
        report = ParamValidator().validate(params, model.input_shape)
        try:
            body = create_serializer("json").serialize_to_request(params, model)["body"]
        except Exception as err:  # an invalid value can break the serializer: the same way both times
            body = type(err).__name__
        seen.append((report.generate_report(), body))
    return seen


def test_attribute_values_validate_and_serialize_as_botocore_does(cloud, monkeypatch):
    """Patch 35: the same reports and the same JSON bytes as botocore's own validator and serializer, for plain
    values (taken as given), binary ones and values botocore refuses (both handed to botocore)."""
    from botocore.serialize import JSONSerializer
    from botocore.validate import ParamValidator

    patched = _botocore_view(VALUES)
    with monkeypatch.context() as botocore_only:
        botocore_only.setattr(ParamValidator, "_validate_structure",
                              patches._originals[(ParamValidator, "_validate_structure")])
        botocore_only.setattr(JSONSerializer, "_serialize_type_structure",
                              patches._originals[(JSONSerializer, "_serialize_type_structure")])
        plain = _botocore_view(VALUES)
    assert patched == plain
    assert patched[0][0] == "" and b'"Zo\\u00eb' in patched[0][1]
    assert b'"B": "AAE="' in patched[8][1]  # base64, as botocore writes a binary value
    assert "Invalid type for parameter Item.a.S" in patched[11][0]
    assert "Unknown parameter in Item.a: \"X\"" in patched[15][0]
    # and the plain ones were the ones taken as given (a model change that turned this off would show here)
    import botocore.session

    shape = botocore.session.get_session().get_service_model("dynamodb").shape_for("AttributeValue")
    assert patches._is_attribute_value(shape)
    assert [patches._plain_value(v) for v in VALUES[:8]] == [True] * 8
    # ({} and a value with two members are plain too: botocore's model lets both through as they are)
    assert [v for v in VALUES[8:] if patches._plain_value(v)] == [{}, {"S": "a", "N": "1"}]


def test_a_kept_handler_still_follows_motos_configuration(cloud, monkeypatch):
    """A URL whose handler is kept is answered as moto answers it when its configuration changes: a service taken
    off the whitelist is refused, as moto refuses it."""
    from moto.core.config import default_user_config
    from moto.core.exceptions import ServiceNotWhitelisted

    sns = cloud.client("sns")
    sns.list_topics()
    assert any(url.startswith("https://sns.") for url in patches._matched_urls)
    monkeypatch.setitem(default_user_config, "core", {**default_user_config.get("core", {}),
                                                      "service_whitelist": ["s3"]})
    with pytest.raises(ServiceNotWhitelisted):
        sns.list_topics()
    with pytest.raises(ServiceNotWhitelisted):  # the fast lane leaves it to moto's stubber, which refuses it
        cloud.client("sqs").list_queues()
    with pytest.raises(ServiceNotWhitelisted):
        cloud.client("dynamodb").list_tables()
    with pytest.raises(ServiceNotWhitelisted):  # moto names Lambda's backend "awslambda": the lane asks it so
        cloud.client("lambda").invoke(FunctionName="any", Payload=b"{}")
    monkeypatch.setitem(default_user_config, "core", {**default_user_config.get("core", {}),
                                                      "service_whitelist": ["lambda"]})
    with pytest.raises(ServiceNotWhitelisted):
        cloud.client("lambda").invoke(FunctionName="any", Payload=b"{}")


def test_motos_operation_models_are_not_the_ones_botocore_caches_for_the_same_service_model(cloud):
    """Patch 42: moto's `ServiceModel.operation_model` wraps botocore's, and both cached under one key: a thread
    asking between the two (a service model is shared by every thread) got botocore's operation model, without the
    `http_trait` moto's router reads. Each now has its own key."""
    import threading

    from moto.core import model as moto_model
    from moto.core.utils import _load_service_model

    fresh = moto_model.ServiceModel(_load_service_model("sesv2", "service-2"), "sesv2")
    botocores = moto_model.BotocoreServiceModel.operation_model(fresh, "SendEmail")  # the first half of moto's
    assert not hasattr(botocores, "http_trait")
    mine = fresh.operation_model("SendEmail")
    assert isinstance(mine, moto_model.OperationModel) and mine.http_trait.method == "POST"
    assert moto_model.BotocoreServiceModel.operation_model(fresh, "SendEmail") is botocores  # its cache kept

    other = moto_model.ServiceModel(_load_service_model("sesv2", "service-2"), "sesv2")
    seen: list = []
    threads = [threading.Thread(target=lambda: seen.extend(other.operation_model(n) for n in other.operation_names))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 * len(other.operation_names)
    assert all(isinstance(m, moto_model.OperationModel) and m.http_trait for m in seen)


def test_dynamodb_request_copies_are_what_boto3s_deepcopy_makes(cloud):
    """Patch 43: the same values as boto3's `copy_dynamodb_params`, in new dicts and lists, with what `deepcopy`
    copies (a set, a tuple holding a list, a condition object, a Binary, a dict subclass) still copied by it."""
    import copy
    from collections import OrderedDict
    from decimal import Decimal

    from boto3.dynamodb import transform
    from boto3.dynamodb.conditions import Attr
    from boto3.dynamodb.types import Binary

    assert transform.copy_dynamodb_params.__module__ == "localcloud.patches"  # the patch, while the cloud runs
    original = lambda params: copy.deepcopy(params, memo=transform._ForgetfulDict())  # noqa: E731 - boto3's own
    shared = ["shared"]
    params = {"TableName": "t", "Item": {"s": "Zoë", "n": Decimal("1.50"), "i": 3, "f": 1.5, "b": True, "z": None,
                                         "raw": b"\x00", "bin": Binary(b"\x01"), "ss": {"a", "b"}, "t": ("x", [1]),
                                         "l": [{"m": shared}, shared], "od": OrderedDict(a=1)},
              "ConditionExpression": Attr("n").gt(Decimal("1")), "ReturnValues": "ALL_NEW"}
    mine, theirs = transform.copy_dynamodb_params(params), original(params)
    assert mine == theirs == params
    assert mine["Item"] is not params["Item"] and mine["Item"]["l"][0]["m"] is not shared
    assert mine["Item"]["l"][0]["m"] is not mine["Item"]["l"][1]  # each place its own copy, as boto3's memo does
    assert mine["Item"]["ss"] is not params["Item"]["ss"] and type(mine["Item"]["od"]) is OrderedDict
    assert mine["Item"]["t"][1] is not params["Item"]["t"][1]
    assert mine["ConditionExpression"] is not params["ConditionExpression"]
    assert mine["Item"]["n"] is params["Item"]["n"] and mine["Item"]["s"] is params["Item"]["s"]  # kept, as deepcopy
