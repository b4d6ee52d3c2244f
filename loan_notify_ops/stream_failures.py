"""The stream failure queue: Loans stream batches the router gave up on, listed and replayed.

Each message is Lambda's OnFailure record for a DynamoDB stream: it names the shard and the sequence numbers of
the batch, not the records. The records are read back from the stream (24 hours' retention) and replayed through
the StreamRouter function itself. Replaying is idempotent: the router's ledger write is conditional and each
execution is named after its notification id, so a record replayed twice (or one the router had started after
all) starts one execution. A message is deleted only once the router took every record of its batch.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from loan_notify.models import execution_name
from loan_notify_ops.stack import OpsError, Stack

_MAX_MESSAGES = 1000


def _messages(sqs: Any, queue_url: str, hold_s: int) -> list[dict[str, Any]]:
    """Every message now in the queue, each held invisible for `hold_s` so the next receive returns the others."""
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < _MAX_MESSAGES:
        page = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=hold_s,
                                   WaitTimeSeconds=0, AttributeNames=["SentTimestamp", "ApproximateReceiveCount"])
        fresh = [m for m in page.get("Messages", []) if m["MessageId"] not in seen]
        if not fresh:
            break
        seen.update((m["MessageId"], m) for m in fresh)
    return list(seen.values())


def _as_lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to the function (epoch seconds, the stream's ARN)."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    return {**record, "dynamodb": dynamodb, "eventSourceARN": stream_arn}


def _records(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    iterator = streams.get_shard_iterator(StreamArn=info["streamArn"], ShardId=info["shardId"],
                                          ShardIteratorType="AT_SEQUENCE_NUMBER",
                                          SequenceNumber=str(info["startSequenceNumber"]))["ShardIterator"]
    end = int(info["endSequenceNumber"])
    wanted = int(info.get("batchSize") or 0) or None
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=100)
        for record in page.get("Records", []):
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                return records
            records.append(_as_lambda_record(record, info["streamArn"]))
        if not page.get("Records") or (wanted and len(records) >= wanted):
            return records
        iterator = page.get("NextShardIterator")
    return records


def _describe_record(record: dict[str, Any]) -> dict[str, Any]:
    image = record.get("dynamodb", {}).get("NewImage") or {}

    def value(key: str) -> Any:
        cell = image.get(key) or {}
        return cell.get("S", cell.get("N"))

    return {"sequence_number": record["dynamodb"]["SequenceNumber"], "event": record.get("eventName"),
            "loan_id": value("loan_id"), "status": value("status"), "version": value("version")}


def _notice_id(record: dict[str, Any]) -> str | None:
    from loan_notify.models import LoanImage

    image = record.get("dynamodb", {}).get("NewImage")
    if not image:
        return None
    from boto3.dynamodb.types import TypeDeserializer

    try:
        loan = LoanImage.model_validate({k: TypeDeserializer().deserialize(v) for k, v in image.items()})
    except (ValueError, TypeError):
        return None
    return loan.notification_id


def list_failures(stack: Stack) -> list[dict[str, Any]]:
    sqs, streams = stack.client("sqs"), stack.client("dynamodbstreams")
    queue_url = stack.output("StreamFailureQueueUrl")
    messages = _messages(sqs, queue_url, hold_s=30)
    for message in messages:  # listed, not taken: visible again at once
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    out = []
    for message in messages:
        body = json.loads(message["Body"])
        info = body.get("DDBStreamBatchInfo") or {}
        entry = {"message_id": message["MessageId"], "failed_at": body.get("timestamp"),
                 "condition": (body.get("requestContext") or {}).get("condition"),
                 "invocations": (body.get("requestContext") or {}).get("approximateInvokeCount"),
                 "batch_size": info.get("batchSize"), "first_sequence": info.get("startSequenceNumber"),
                 "last_sequence": info.get("endSequenceNumber"), "records": []}
        if info:
            entry["records"] = [_describe_record(r) for r in _records(streams, info)]
        out.append(entry)
    return out


def redrive(stack: Stack) -> list[dict[str, Any]]:
    sqs, streams, lam = stack.client("sqs"), stack.client("dynamodbstreams"), stack.client("lambda")
    sfn = stack.client("stepfunctions")
    queue_url = stack.output("StreamFailureQueueUrl")
    router = stack.function_name("StreamRouterFunction")
    machine = stack.output("NotifyStateMachineArn")
    results = []
    for message in _messages(sqs, queue_url, hold_s=300):
        info = json.loads(message["Body"]).get("DDBStreamBatchInfo") or {}
        if not info:
            raise OpsError(f"message {message['MessageId']} is not a stream failure record")
        records = _records(streams, info)
        if not records:
            raise OpsError(f"message {message['MessageId']}: its records are no longer in the stream (24 hours' "
                           "retention); the ledger and the Loans table hold the changes")
        answer = lam.invoke(FunctionName=router, Payload=json.dumps({"Records": records}).encode())
        payload = json.loads(answer["Payload"].read() or b"{}")
        failed = [f.get("itemIdentifier") for f in payload.get("batchItemFailures", [])] \
            if not answer.get("FunctionError") else [r["dynamodb"]["SequenceNumber"] for r in records]
        replayed = []
        for record in records:
            notice_id = _notice_id(record)
            status = None
            if notice_id:
                arn = machine.replace(":stateMachine:", ":execution:") + f":{execution_name(notice_id)}"
                try:
                    status = sfn.describe_execution(executionArn=arn)["status"]
                except sfn.exceptions.ExecutionDoesNotExist:
                    status = None
            replayed.append({**_describe_record(record), "notice_id": notice_id, "execution_status": status,
                             "failed": record["dynamodb"]["SequenceNumber"] in failed})
        if not failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        else:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=0)
        results.append({"message_id": message["MessageId"], "deleted": not failed, "records": replayed})
    return results


def format_list(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "the stream failure queue is empty"
    lines = []
    for entry in entries:
        lines.append(f"{entry['message_id']}  failed {entry['failed_at']}  {entry['condition']}  after "
                     f"{entry['invocations']} invocations  sequence {entry['first_sequence']}-{entry['last_sequence']}")
        lines += [f"    {r['sequence_number']}  {r['event']}  loan {r['loan_id']} {r['status']} v{r['version']}"
                  for r in entry["records"]]
    return "\n".join(lines)


def format_redrive(results: list[dict[str, Any]]) -> str:
    if not results:
        return "the stream failure queue is empty: nothing to redrive"
    lines = []
    for result in results:
        lines.append(f"{result['message_id']}  " + ("replayed, removed from the queue" if result["deleted"]
                                                     else "NOT all replayed: kept in the queue"))
        for r in result["records"]:
            state = "router failed again" if r["failed"] else f"execution {r['execution_status'] or '-'}"
            lines.append(f"    loan {r['loan_id']} {r['status']} v{r['version']}  notice {r['notice_id'] or '-'}"
                         f"  {state}")
    return "\n".join(lines)
