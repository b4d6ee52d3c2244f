"""The local cloud's DynamoDB fast lane (localcloud.fastlane, patch 26) answers what moto's own path answers.

The same requests run against the session's local cloud with the fast lane and without it (moto's botocore stubber,
over its HTTP-shaped path), on a scratch table, and what boto3 parsed is compared: items, every ReturnValues,
errors with their codes, messages and old items, a transaction, a query, a scan, and the table's description.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from localcloud import fastlane
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


def test_dynamodb_answers_are_the_same_through_the_fast_lane_and_through_moto(cloud, scratch, monkeypatch):
    client, table = scratch
    answered = []
    original = fastlane.answer

    def counting(**kwargs):
        response = original(**kwargs)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(fastlane, "answer", counting)
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


def test_the_fast_lane_leaves_other_services_and_server_mode_to_moto(cloud):
    """Only DynamoDB, only while moto's in-process mock is on, and only for AWS endpoints."""
    assert {"dynamodb"} == set(fastlane.SERVICES)
    assert fastlane.mocked("https://dynamodb.us-east-1.amazonaws.com/")
    assert not fastlane.mocked("http://127.0.0.1:4566/")
    sqs = cloud.client("sqs")
    calls = []
    original = fastlane.answer
    fastlane.answer = lambda **kwargs: calls.append(original(**kwargs))
    try:
        sqs.list_queues()
    finally:
        fastlane.answer = original
    assert calls == [None]
