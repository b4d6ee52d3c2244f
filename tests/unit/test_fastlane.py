"""The local cloud's fast lane (localcloud.fastlane, patches 26 and 37) answers what moto's own path answers.

The same requests run against the session's local cloud with the fast lane and without it (moto's botocore stubber,
over its HTTP-shaped path), and what boto3 parsed is compared. DynamoDB, on a scratch table: items, every
ReturnValues, errors with their codes, messages and old items, a transaction, a query, a scan, and the table's
description. SQS and Step Functions: a queue's URL and attributes, a message sent, received and deleted with its
attributes, a state machine's description and tags, and their refusals; a throttled task callback is retried by
botocore's own retry handler on both paths.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from localcloud import fastlane, smsvoice
from localcloud.smsvoice import SmsVoiceBackend
from tests.unit.test_dynamodb_patches import ITEM, _requests

PLAIN_ITEM = {k: v for k, v in ITEM.items() if k != "blob"}  # a binary attribute takes moto's usual path


def _errors(client, table: str) -> list:
    """Refusals: a failed condition with its old item, an expression that does not parse, a missing table, and a
    transaction whose condition fails."""
    key = {"pk": {"S": "k-1"}}
    calls = [
        lambda: client.update_item(TableName=table, Key=key, UpdateExpression="SET x = :x",
                                   ConditionExpression="n = :no", ReturnValuesOnConditionCheckFailure="ALL_OLD",
                                   ExpressionAttributeValues={":x": {"S": "y"}, ":no": {"N": "0"}}),
        lambda: client.update_item(TableName=table, Key=key, UpdateExpression="SET = :x",
                                   ExpressionAttributeValues={":x": {"S": "y"}}),
        lambda: client.get_item(TableName=f"{table}-missing", Key=key),
        lambda: client.transact_write_items(TransactItems=[{"ConditionCheck": {
            "TableName": table, "Key": key, "ConditionExpression": "attribute_not_exists(pk)"}}]),
    ]
    refused = []
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        response = err.value.response
        refused.append({"code": response["Error"]["Code"], "message": response["Error"].get("Message"),
                        "item": response.get("Item"), "reasons": response.get("CancellationReasons"),
                        "status": response["ResponseMetadata"]["HTTPStatusCode"]})
    return refused


def _run(client, table: str) -> list:
    answers = _requests(client, table)
    client.put_item(TableName=table, Item=PLAIN_ITEM)  # without the binary value: answered by the lane
    answers.append(client.get_item(TableName=table, Key={"pk": {"S": "k-1"}}, ConsistentRead=True))
    answers.extend(_errors(client, table))
    described = client.describe_table(TableName=table)["Table"]
    answers.append({k: described[k] for k in ("TableName", "KeySchema", "AttributeDefinitions", "ItemCount")})
    for answer in answers:
        answer.pop("ResponseMetadata", None)
    for key in ("k-1", "new"):
        client.delete_item(TableName=table, Key={"pk": {"S": key}})
    return answers


def _count_lane_answers(monkeypatch) -> list:
    """For each request from now on: whether the fast lane answered it (True) or left it to the usual path."""
    answered: list = []
    original = fastlane.answer

    def counting(**kwargs):
        response = original(**kwargs)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(fastlane, "answer", counting)
    return answered


def test_dynamodb_answers_are_the_same_through_the_fast_lane_and_through_moto(cloud, scratch, monkeypatch):
    client, table = scratch
    answered = _count_lane_answers(monkeypatch)
    laned = _run(client, table)
    assert sum(answered) >= 20  # the lane answered them (all but the requests carrying a binary value)
    assert answered.count(False) == 1  # the put carrying one
    with monkeypatch.context() as moto_only:
        moto_only.setattr(fastlane, "SERVICES", frozenset())
        answered.clear()
        plain = _run(client, table)
        assert not any(answered)
    assert laned == plain
    assert laned[1]["Item"]["blob"]["B"] == b"\x00\x01binary"  # an answer with a binary value: decoded as usual
    # real answers: a refused condition returns the old item, a missing table is a ResourceNotFoundException
    refused = {a["code"]: a for a in laned if isinstance(a, dict) and "code" in a}
    assert refused["ConditionalCheckFailedException"]["item"]["pk"] == {"S": "k-1"}
    assert refused["ResourceNotFoundException"]["status"] == 400
    assert refused["TransactionCanceledException"]["reasons"][0]["Code"] == "ConditionalCheckFailed"


def _refusal(call) -> dict:
    with pytest.raises(ClientError) as err:
        call()
    response = err.value.response
    return {"code": response["Error"]["Code"], "message": response["Error"].get("Message"),
            "status": response["ResponseMetadata"]["HTTPStatusCode"],
            "retries": response["ResponseMetadata"].get("RetryAttempts")}


def _queue_and_state_machine(cloud, name: str) -> list:
    sqs, sfn = cloud.client("sqs"), cloud.client("stepfunctions")
    machine = cloud.outputs["NotifyStateMachineArn"]
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    answers: list = [url.rsplit("/", 1)[1], sqs.get_queue_url(QueueName=name)["QueueUrl"] == url]
    sent = sqs.send_message(QueueUrl=url, MessageBody='{"notice": "a & b = c"}', DelaySeconds=0,
                            MessageAttributes={"kind": {"DataType": "String", "StringValue": "critical"},
                                               "n": {"DataType": "Number", "StringValue": "7"}})
    answers.append({k: sent[k] for k in ("MD5OfMessageBody", "MD5OfMessageAttributes")})
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                   MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"]
    answers.append([{k: m[k] for k in ("Body", "MD5OfBody", "MessageAttributes", "Attributes")} for m in received])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    answers.append(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "VisibilityTimeout"])["Attributes"])
    answers.append(_refusal(lambda: sqs.get_queue_url(QueueName=f"{name}-missing")))
    answers.append(_refusal(lambda: sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)))
    sqs.delete_queue(QueueUrl=url)
    described = sfn.describe_state_machine(stateMachineArn=machine)
    answers.append({k: described[k] for k in ("name", "status", "definition", "roleArn", "type")})
    answers.append(sfn.list_tags_for_resource(resourceArn=machine)["tags"])
    answers.append(_refusal(lambda: sfn.describe_execution(executionArn=f"{machine}:nope".replace(
        ":stateMachine:", ":execution:"))))
    answers.append(_refusal(lambda: sfn.start_execution(stateMachineArn=machine, name="x" * 81, input="{}")))
    answers.append(_refusal(lambda: sfn.send_task_success(taskToken="no-such-token", output="{}")))
    cloud.providers.throttle_callbacks(1)  # the first try is throttled; botocore's retry handler tries again
    answers.append(_refusal(lambda: sfn.send_task_failure(taskToken="no-such-token", error="E", cause="c")))
    return answers


def _both_ways(cloud, monkeypatch, requests, name: str) -> tuple[list, list, list]:
    """`requests` run through the fast lane, then through moto's usual path only: (laned, plain, and for the laned run
    each call's (service, operation, answered by the lane))."""
    answered: list = []
    original = fastlane.answer

    def counting(**kwargs):
        response = original(**kwargs)
        answered.append((kwargs["model"].service_model.service_name, kwargs["model"].name, response is not None))
        return response

    monkeypatch.setattr(fastlane, "answer", counting)
    laned = requests(cloud, name)
    calls = list(answered)
    with monkeypatch.context() as moto_only:
        moto_only.setattr(fastlane, "SERVICES", frozenset({"dynamodb"}))
        answered.clear()
        plain = requests(cloud, name)
        assert not any(by_lane for *_call, by_lane in answered)
    return laned, plain, calls


def test_sqs_and_step_functions_answers_are_the_same_through_the_fast_lane_and_through_moto(cloud, monkeypatch):
    laned, plain, calls = _both_ways(cloud, monkeypatch, _queue_and_state_machine, "lane-check")
    assert {service for service, _op, by_lane in calls if by_lane} == {"sqs", "stepfunctions"}
    assert all(by_lane for *_call, by_lane in calls)
    assert laned == plain
    refused = [a for a in laned if isinstance(a, dict) and "code" in a]
    assert [r["code"] for r in refused] == ["AWS.SimpleQueueService.NonExistentQueue", "InvalidParameterValue",
                                            "ExecutionDoesNotExist", "ValidationException", "InvalidToken",
                                            "InvalidToken"]
    assert refused[-1]["retries"] == 1 and refused[-2]["retries"] == 0  # the throttled try was retried


def test_the_fast_lane_leaves_other_services_and_server_mode_to_moto(cloud):
    """Only DynamoDB, SQS, Step Functions, Lambda's Invoke and SNS's Publish, only while moto's in-process mock is on,
    and only for AWS endpoints."""
    assert {"dynamodb", "sqs", "stepfunctions", "lambda", "sns"} == set(fastlane.SERVICES)
    assert {"lambda": {"Invoke"}, "sns": {"Publish"}} == fastlane.OPERATIONS
    assert fastlane.mocked("https://dynamodb.us-east-1.amazonaws.com/")
    assert not fastlane.mocked("http://127.0.0.1:4566/")
    calls = []
    original = fastlane.answer
    fastlane.answer = lambda **kwargs: calls.append(original(**kwargs))
    try:
        cloud.client("sns").list_topics()
        cloud.client("lambda").list_functions()
        cloud.client("ses").list_identities()
    finally:
        fastlane.answer = original
    assert calls == [None, None, None]


def _invoke_and_publish(cloud, name: str) -> list:
    """A state machine task's Invoke (a function's answer, its error, a missing function) and a Publish (to a topic,
    to a missing one, to a malformed phone number)."""
    functions, sns = cloud.client("lambda"), cloud.client("sns")
    prepare = cloud.runtime.function("PrepareNoticeFunction").name
    answers: list = []
    for payload in (b'{"not": "a notice"}', b"[1, 2]"):
        invoked = functions.invoke(FunctionName=prepare, Payload=payload)
        answers.append({"status": invoked["StatusCode"], "error": invoked.get("FunctionError"),
                        "payload": invoked["Payload"].read()})
    answers.append(_refusal(lambda: functions.invoke(FunctionName=f"{name}-missing", Payload=b"{}")))
    topic = sns.create_topic(Name=name)["TopicArn"]
    published = sns.publish(TopicArn=topic, Message='{"a": "b & c = d"}', Subject="s",
                            MessageAttributes={"kind": {"DataType": "String", "StringValue": "x"}})
    answers.append(sorted(published))
    answers.append(_refusal(lambda: sns.publish(TopicArn=f"{topic}-missing", Message="m")))
    answers.append(_refusal(lambda: sns.publish(PhoneNumber="not-a-number", Message="m")))
    sns.delete_topic(TopicArn=topic)
    return answers


def test_a_task_invoke_and_a_publish_are_the_same_through_the_fast_lane_and_through_moto(cloud, monkeypatch):
    laned, plain, calls = _both_ways(cloud, monkeypatch, _invoke_and_publish, "lane-topic")
    assert {op for _service, op, by_lane in calls if by_lane} == {"Invoke", "Publish"}
    assert not any(by_lane for _service, op, by_lane in calls if op not in ("Invoke", "Publish"))
    assert laned == plain
    # the handler refused the event: an error answer with its payload, as moto reports a function's error
    assert laned[0]["error"] == "Handled" and laned[0]["status"] == 200 and b"errorMessage" in laned[0]["payload"]
    assert [a["code"] for a in laned if isinstance(a, dict) and "code" in a] == [
        "ResourceNotFoundException", "NotFound", "InvalidParameter"]


def _texts(cloud, name: str) -> list:
    """End User Messaging SMS requests (the local cloud's own model): a text with no configuration set (sent, no
    events), one through the stack's configuration set to a country its protect configuration blocks, one to a
    configuration set that does not exist, one to a number that is not E.164, and an operation not modelled."""
    sms = cloud.client("pinpoint-sms-voice-v2")
    configuration_set = next(c.name for (region, _), c in smsvoice.backend.configuration_sets.items()
                             if region == cloud.region)
    sent = sms.send_text_message(DestinationPhoneNumber="+14254147755", MessageBody=f"{name} & more")
    answers: list = [sorted(k for k in sent if k != "ResponseMetadata"), sent["ResponseMetadata"]["HTTPStatusCode"]]
    answers.append(_refusal(lambda: sms.send_text_message(
        DestinationPhoneNumber="+99912345678", MessageBody="x", ConfigurationSetName=configuration_set)))
    answers.append(_refusal(lambda: sms.send_text_message(
        DestinationPhoneNumber="+14254147755", MessageBody="x", ConfigurationSetName=f"{name}-missing")))
    answers.append(_refusal(lambda: sms.send_text_message(DestinationPhoneNumber="12", MessageBody="x")))
    answers.append(_refusal(lambda: sms.describe_configuration_sets()))
    return answers


def test_texts_are_answered_the_same_through_the_fast_lane_and_through_the_before_send_handler(cloud, monkeypatch):
    """The local End User Messaging SMS model answers at before-call (without signing the request) what its
    before-send handler answers, results and errors alike; a client given another handler keeps it."""
    sent_before = len(smsvoice.backend.sent)
    answered = _count_lane_answers(monkeypatch)
    laned = _texts(cloud, "lane-text")
    assert answered == [True] * 5
    with monkeypatch.context() as before_send:
        before_send.setattr(fastlane, "LOCAL_MODELS", frozenset())
        answered.clear()
        plain = _texts(cloud, "lane-text")
        assert answered == [False] * 5
    assert laned == plain
    assert [a["code"] for a in laned[2:]] == ["ValidationException", "ResourceNotFoundException",
                                             "ValidationException", "UnknownOperationException"]
    assert [t.text for t in smsvoice.backend.sent[sent_before:]] == ["lane-text & more"] * 2
    assert smsvoice.backend.sent[-1].region == cloud.region

    other = SmsVoiceBackend()
    client = cloud.client("pinpoint-sms-voice-v2")
    client.meta.events.unregister(smsvoice.EVENT_NAME, smsvoice.answer)
    client.meta.events.register(smsvoice.EVENT_NAME, smsvoice.answering(other))
    answered.clear()
    client.send_text_message(DestinationPhoneNumber="+14254147755", MessageBody="to the other model")
    assert answered == [False] and [t.text for t in other.sent] == ["to the other model"]
