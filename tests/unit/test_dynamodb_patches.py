"""The local cloud's DynamoDB speed-ups (localcloud.patches 17-22, 24, 25, 30, 31, 33 and 40) answer what moto answers
without them.

Each test runs the same requests against the session's local cloud twice: with the patches, and with moto's own
code put back for the duration (monkeypatch), and compares what boto3 parsed. A scratch table (not one of the
stack's) is created for it and deleted after.
"""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from localcloud import patches

ITEM = {
    "pk": {"S": "k-1"},
    "name": {"S": "Zoë 张"},
    "n": {"N": "12.50"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "blob": {"B": b"\x00\x01binary"},
    "tags": {"SS": ["a", "b"]},
    "nums": {"NS": ["1", "2.5"]},
    "chain": {"L": [{"M": {"seq": {"N": "1"}, "change": {"M": {"what": {"S": "opened"},
                                                                "ops": {"L": [{"L": [{"S": "set"}, {"N": "3"}]}]}}}}},
                    {"M": {"seq": {"N": "2"}, "hash": {"S": "ab" * 32}}}]},
    "attempts": {"L": [{"M": {"receipts": {"M": {}}, "channel": {"S": "SMS"}}}]},
}


def _unpatched(monkeypatch) -> None:
    """moto's own code for every DynamoDB patch (the lock stays: it changes no answer)."""
    from moto.core.base_backend import BackendDict
    from moto.core.responses import ActionResult
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.responses import DynamoHandler

    monkeypatch.setattr(validators, "deepcopy", patches._originals[(validators, "deepcopy")])
    for owner, name in ((ActionResult, "execute_result"), (BackendDict, "__getitem__"), (DynamoType, "size"),
                        (DynamoType, "to_regular_json"), (DynamoHandler, "update_item"), (dynamodb_models, "copy"),
                        (DepthFirstTraverser, "traverse"), (UpdateExpressionParser, "make"),
                        (ConditionExpressionParser, "_lex_condition_expression"),
                        (ConditionExpressionParser, "parse"), (ConditionExpressionParser, "_make_operand"),
                        (validators.UpdateExpressionValidator, "__init__"),
                        (validators.UpdateExpressionValidator, "validate"), (Item, "project")):
        monkeypatch.setattr(owner, name, patches._originals[(owner, name)])
    for name in ("get_item", "update_item"):
        monkeypatch.setattr(DynamoDBBackend, name, patches._atomic(patches._originals[(DynamoDBBackend, name)]))


def _requests(client, table: str) -> list:
    """Reads, writes with every ReturnValues, a condition that fails with ALL_OLD, a transaction and a query."""
    key = {"pk": {"S": "k-1"}}
    answers = [client.put_item(TableName=table, Item=ITEM),
               client.get_item(TableName=table, Key=key, ConsistentRead=True),
               client.get_item(TableName=table, Key=key, ProjectionExpression="chain[1], #n",
                               ExpressionAttributeNames={"#n": "name"}),
               client.get_item(TableName=table, Key=key, ConsistentRead=True,
                               ProjectionExpression="chain[0].change.ops, chain[0].seq, attempts[3], absent, #b",
                               ExpressionAttributeNames={"#b": "blob"})]
    for number, returns in enumerate(("NONE", "ALL_NEW", "ALL_OLD", "UPDATED_OLD", "UPDATED_NEW")):
        answers.append(client.update_item(
            TableName=table, Key=key, ReturnValues=returns,
            UpdateExpression="SET chain = list_append(chain, :e), attempts[0].receipts.#k = :r, n = n + :one",
            ExpressionAttributeNames={"#k": f"kind-{number}"},
            ExpressionAttributeValues={":e": {"L": [{"M": {"seq": {"N": str(3 + number)}}}]},
                                       ":r": {"M": {"at": {"S": "2026-11-30T08:00:00Z"}}}, ":one": {"N": "1"}}))
    answers.append(client.update_item(TableName=table, Key={"pk": {"S": "new"}}, ReturnValues="ALL_NEW",
                                      UpdateExpression="SET x = :x", ExpressionAttributeValues={":x": {"S": "y"}}))
    try:
        client.update_item(TableName=table, Key=key, UpdateExpression="SET x = :x", ConditionExpression="n = :no",
                           ExpressionAttributeValues={":x": {"S": "y"}, ":no": {"N": "0"}},
                           ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except client.exceptions.ConditionalCheckFailedException as err:
        answers.append({"error": err.response["Error"]["Code"], "item": err.response.get("Item")})
    client.transact_write_items(TransactItems=[{"Update": {
        "TableName": table, "Key": key, "UpdateExpression": "SET t = :t",
        "ExpressionAttributeValues": {":t": {"N": "1"}}}}])
    answers.append(client.query(TableName=table, KeyConditionExpression="pk = :k",
                                ExpressionAttributeValues={":k": {"S": "k-1"}}))
    answers.append(client.scan(TableName=table))
    for answer in answers:
        answer.pop("ResponseMetadata", None)
    return answers


def test_dynamodb_answers_are_the_same_with_and_without_the_speed_ups(cloud, scratch, monkeypatch):
    client, table = scratch
    patched = _requests(client, table)
    client.delete_item(TableName=table, Key={"pk": {"S": "k-1"}})
    client.delete_item(TableName=table, Key={"pk": {"S": "new"}})
    with monkeypatch.context() as moto_only:
        _unpatched(moto_only)
        plain = _requests(client, table)
    assert patched == plain
    # the answers are real ones: the binary value came back as bytes, the counter moved, the old image was returned
    assert patched[1]["Item"]["blob"]["B"] == b"\x00\x01binary"
    assert patched[6]["Attributes"]["n"] == {"N": "14.50"}  # ALL_OLD: 12.50 after two increments
    assert "Attributes" not in patched[4]
    assert set(patched[3]["Item"]) == {"chain", "blob"}  # the projected read: what its paths name, nothing else


@pytest.mark.parametrize("paths", [
    [["name"]], [["chain[1]"]], [["chain[1]", "seq"]], [["chain[9]"]], [["missing"]], [["pk"]], [["blob"], ["tags"]],
    [["attempts[0]", "receipts"]], [["chain[0]", "change", "ops"], ["chain[0]", "seq"]], [["name"], ["name"]],
    [["chain"], ["chain[1]"]], [["chain[0]", "nope"]], [["nums[0]"]], [["attempts", "channel"]],
])
def test_a_projection_returns_the_item_moto_returns(cloud, paths):
    """Patch 40 converts only the attribute each path starts from; moto converted the whole item."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    wire = {**ITEM, "blob": {"B": base64.b64encode(ITEM["blob"]["B"]).decode()}}  # as moto keeps it
    item = Item(DynamoType(ITEM["pk"]), None, wire)
    moto_project = patches._originals[(Item, "project")]
    assert item.project(paths).to_json() == moto_project(item, paths).to_json()


def test_item_sizes_and_plain_values_match_moto(cloud):
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    moto_size = patches._originals[(DynamoType, "size")]
    moto_json = patches._originals[(DynamoType, "to_regular_json")]
    wire = {**ITEM, "blob": {"B": base64.b64encode(ITEM["blob"]["B"]).decode()}}  # as moto keeps it
    item = Item(DynamoType(ITEM["pk"]), None, wire)
    for name, value in item.attrs.items():
        assert value.size() == moto_size(value), name
        assert value.to_regular_json() == moto_json(value), name
    assert item.size() > 0
    assert item.to_regular_json()["n"] == Decimal("12.50")


def test_an_update_on_a_table_with_a_stream_still_carries_its_old_image(cloud, scratch):
    """On a table with a stream the old image is still copied before the update (the router reads both images
    of a loan's change)."""
    client, table = scratch
    client.update_table(TableName=table, StreamSpecification={"StreamEnabled": True,
                                                              "StreamViewType": "NEW_AND_OLD_IMAGES"})
    client.put_item(TableName=table, Item={"pk": {"S": "s-1"}, "status": {"S": "SUBMITTED"}})
    client.update_item(TableName=table, Key={"pk": {"S": "s-1"}}, UpdateExpression="SET #s = :s",
                       ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "APPROVED"}})
    streams = cloud.client("dynamodbstreams")
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    modify = next(r for r in records if r["eventName"] == "MODIFY")
    assert modify["dynamodb"]["OldImage"]["status"] == {"S": "SUBMITTED"}
    assert modify["dynamodb"]["NewImage"]["status"] == {"S": "APPROVED"}


def test_a_cached_expression_applies_to_each_item_on_its_own_and_a_bad_one_fails_every_time(cloud, scratch):
    """The same expression string, parsed once, updates two items with their own values; an expression that does
    not parse is refused on every request, not only the first."""
    from botocore.exceptions import ClientError

    client, table = scratch
    expression = "SET chain = list_append(if_not_exists(chain, :empty), :e), n = if_not_exists(n, :zero) + :one"
    for key, entries in (("c-1", 3), ("c-2", 1)):
        for number in range(entries):
            client.update_item(TableName=table, Key={"pk": {"S": key}}, UpdateExpression=expression,
                               ExpressionAttributeValues={":empty": {"L": []}, ":e": {"L": [{"S": f"{key}-{number}"}]},
                                                          ":zero": {"N": "0"}, ":one": {"N": "1"}})
    items = {key: client.get_item(TableName=table, Key={"pk": {"S": key}})["Item"] for key in ("c-1", "c-2")}
    assert items["c-1"]["chain"] == {"L": [{"S": "c-1-0"}, {"S": "c-1-1"}, {"S": "c-1-2"}]}
    assert items["c-2"]["chain"] == {"L": [{"S": "c-2-0"}]} and items["c-2"]["n"] == {"N": "1"}
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            client.update_item(TableName=table, Key={"pk": {"S": "c-1"}}, UpdateExpression="SET = :x",
                               ExpressionAttributeValues={":x": {"S": "y"}})
        assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_expression_checks_and_condition_tokens_kept_still_refuse_what_moto_refuses(cloud, scratch):
    """Patches 30 and 31: a condition whose tokens are kept and an expression whose checks once passed still get
    moto's answers; a combination that fails its checks (a key attribute updated, two clauses on one path, a
    condition naming an undefined attribute name) fails on every request, also after the same expression passed
    with other names."""
    from botocore.exceptions import ClientError

    client, table = scratch
    key = {"pk": {"S": "e-1"}}
    condition = "attribute_not_exists(pk) OR (#n < :limit AND size(#t) >= :one)"

    def counted(number: int) -> None:
        client.update_item(TableName=table, Key=key,
                           UpdateExpression="SET #n = if_not_exists(#n, :zero) + :one, #t = :t",
                           ConditionExpression=condition, ExpressionAttributeNames={"#n": "n", "#t": "t"},
                           ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":limit": {"N": "2"},
                                                      ":t": {"S": f"t{number}"}})

    for number in range(2):
        counted(number)
        assert client.get_item(TableName=table, Key=key)["Item"]["n"] == {"N": str(number + 1)}
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        counted(2)  # n is 2: the same condition, evaluated on this item, fails
    assert client.get_item(TableName=table, Key=key)["Item"]["t"] == {"S": "t1"}

    def refused(**request) -> str:
        """What the refusal says (moto raises a bare KeyError for a condition's undefined name, as without patches)."""
        with pytest.raises((ClientError, KeyError)) as err:
            client.update_item(TableName=table, Key=key, **request)
        return err.value.response["Error"]["Message"] if isinstance(err.value, ClientError) else str(err.value)

    same = {"UpdateExpression": "SET #a = :x", "ExpressionAttributeValues": {":x": {"S": "y"}}}
    client.update_item(TableName=table, Key=key, ExpressionAttributeNames={"#a": "other"}, **same)  # passes
    for _ in range(2):  # the same expression naming the key attribute: refused each time
        assert "Cannot update attribute pk" in refused(ExpressionAttributeNames={"#a": "pk"}, **same)
        assert "Two document paths" in refused(UpdateExpression="SET a.b = :x, a = :x",
                                               ExpressionAttributeValues={":x": {"S": "y"}})
        assert "#undefined" in refused(UpdateExpression="SET a = :x",
                                       ConditionExpression="attribute_exists(#undefined)",
                                       ExpressionAttributeValues={":x": {"S": "y"}})


def test_a_kept_condition_tree_evaluates_each_request_with_its_own_values(cloud, scratch, monkeypatch):
    """Patch 33: one condition string, kept parsed, judged against each request's values (numbers, strings, a value
    list for IN, a type for attribute_type), in writes and in a query's filter; a condition naming a value the
    request does not define is refused on every request; and the answers are the ones moto gives unpatched."""
    client, table = scratch

    def run() -> list:
        answers = []
        condition = "(#n < :limit OR #s IN (:a, :b)) AND attribute_type(#s, :type)"
        client.put_item(TableName=table, Item={"pk": {"S": "q-1"}, "n": {"N": "5"}, "s": {"S": "open"}})
        for limit, a, kind in (("9", "x", "S"), ("3", "open", "S"), ("3", "x", "S"), ("9", "x", "N")):
            try:
                client.update_item(TableName=table, Key={"pk": {"S": "q-1"}}, UpdateExpression="SET m = :limit",
                                   ConditionExpression=condition, ExpressionAttributeNames={"#n": "n", "#s": "s"},
                                   ExpressionAttributeValues={":limit": {"N": limit}, ":a": {"S": a},
                                                              ":b": {"S": "y"}, ":type": {"S": kind}})
                answers.append(("applied", limit, a, kind))
            except client.exceptions.ConditionalCheckFailedException:
                answers.append(("refused", limit, a, kind))
        for limit in ("9", "3"):
            found = client.query(TableName=table, KeyConditionExpression="pk = :k", FilterExpression="n < :limit",
                                 ExpressionAttributeValues={":k": {"S": "q-1"}, ":limit": {"N": limit}})
            answers.append(("query", limit, found["Count"]))
        for _ in range(2):
            try:
                client.update_item(TableName=table, Key={"pk": {"S": "q-1"}}, UpdateExpression="SET m = :x",
                                   ConditionExpression="n < :missing", ExpressionAttributeValues={":x": {"N": "1"}})
                answers.append("applied without :missing")
            except Exception as err:  # moto raises what it raises for an undefined value; the same every time
                answers.append(("undefined", type(err).__name__))
        answers.append(client.get_item(TableName=table, Key={"pk": {"S": "q-1"}})["Item"])
        client.delete_item(TableName=table, Key={"pk": {"S": "q-1"}})
        return answers

    patched = run()
    assert patched[:4] == [("applied", "9", "x", "S"), ("applied", "3", "open", "S"), ("refused", "3", "x", "S"),
                           ("refused", "9", "x", "N")]
    assert patched[4:6] == [("query", "9", 1), ("query", "3", 0)]
    assert patched[6] == patched[7] and patched[6] != "applied without :missing"
    with monkeypatch.context() as moto_only:
        _unpatched(moto_only)
        assert run() == patched


def _size_checks(client, table: str) -> list:
    """Writes on both sides of moto's 405,000-byte item limit: whole items, top-level SETs one after another, and a
    nested SET that grows the item in place between two top-level ones. (A clause keyword appears once per update, so
    a REMOVE, ADD or DELETE never runs between two top-level SETs: the nested SET is the one action that can change
    the item under a carried size; the REMOVE and ADD here check those clauses beside a SET clause still agree.)"""
    def s(n: int) -> dict:
        return {"S": "x" * n}

    key = {"pk": {"S": "big"}}
    calls = [
        lambda: client.put_item(TableName=table, Item={**key, "a": s(200_000), "b": s(150_000),
                                                       "m": {"M": {"part": s(10)}}}),
        lambda: client.put_item(TableName=table, Item={"pk": {"S": "too-big"}, **{f"a{i}": s(140_000)
                                                                                  for i in range(3)}}),
        lambda: client.update_item(TableName=table, Key=key, UpdateExpression="SET c = :x, d = :y",
                                   ExpressionAttributeValues={":x": s(20_000), ":y": s(20_000)}),
        lambda: client.update_item(TableName=table, Key=key, UpdateExpression="SET e = :x, f = :y",
                                   ExpressionAttributeValues={":x": s(10_000), ":y": s(10_000)}),
        # a top-level SET (the size carried on), a nested one growing the item in place, then a top-level one the
        # carried size would let through
        lambda: client.update_item(TableName=table, Key=key, UpdateExpression="SET c = :tiny, m.part = :big, g = :s",
                                   ExpressionAttributeValues={":tiny": s(1), ":big": s(30_000), ":s": s(100)}),
        lambda: client.update_item(TableName=table, Key=key, UpdateExpression="SET c = :x, d = :y",
                                   ExpressionAttributeValues={":x": s(1), ":y": s(25_000)}),
        lambda: client.update_item(TableName=table, Key=key, UpdateExpression="REMOVE a SET h = :x, i = :y",
                                   ExpressionAttributeValues={":x": s(30_000), ":y": s(30_000)}),
        lambda: client.update_item(TableName=table, Key=key, UpdateExpression="SET j = :x ADD n :one",
                                   ExpressionAttributeValues={":x": s(180_000), ":one": {"N": "1"}}),
        lambda: client.update_item(TableName=table, Key=key, UpdateExpression="SET k = :x",
                                   ExpressionAttributeValues={":x": s(30_000)}),
    ]
    outcomes = []
    for call in calls:
        try:
            call()
            outcomes.append("ok")
        except client.exceptions.ClientError as err:
            outcomes.append((err.response["Error"]["Code"], err.response["Error"]["Message"]))
        item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
        outcomes.append({name: len(value.get("S", "")) for name, value in item.items()})
    for pk in ("big", "too-big"):
        client.delete_item(TableName=table, Key={"pk": {"S": pk}})
    return outcomes


def test_item_size_limit_is_checked_where_moto_checks_it(cloud, scratch, monkeypatch):
    """Patch 38 carries an item's size from one attribute write to the next: the same writes are refused as with
    moto's own sum over the whole item at every write."""
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
    from moto.dynamodb.parsing import executors

    client, table = scratch
    patched = _size_checks(client, table)
    with monkeypatch.context() as moto_only:
        for owner, name in ((LimitedSizeDict, "__setitem__"), (Item, "__init__"),
                            (executors.UpdateExpressionExecutor, "execute"), (executors.SetExecutor, "execute"),
                            (executors.RemoveExecutor, "execute"), (executors.AddExecutor, "execute"),
                            (executors.DeleteExecutor, "execute")):
            moto_only.setattr(owner, name, patches._originals[(owner, name)])
        plain = _size_checks(client, table)
    assert patched == plain
    refused = [o for o in patched if isinstance(o, tuple)]
    assert len(refused) >= 4 and all("exceeded the maximum allowed size" in message for _code, message in refused)
    assert patched.count("ok") >= 4
