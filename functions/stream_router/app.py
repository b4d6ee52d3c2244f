"""Loans stream -> one notice execution per borrower-visible status change (partial batch responses)."""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import functools
import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from loan_notify.executions import StepFunctionsStarter
from loan_notify.ledger import Ledger
from loan_notify.router import RouteOutcome, route

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # X-Ray patches only the AWS SDK this function uses
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)



@functools.cache
def ports() -> tuple[Ledger, StepFunctionsStarter]:
    """Built once per cold start, on the first record (importing this module builds no client)."""
    ledger = Ledger(boto3.resource("dynamodb").Table(os.environ["NOTIFICATIONS_TABLE"]))
    # StartExecution throttling is a wait: adaptive retries (client-side rate limiting and backoff) inside the
    # record's budget; a batch that still fails is retried by the stream mapping, and only then reaches the failure
    # queue.
    start = StepFunctionsStarter(boto3.client("stepfunctions", config=Config(retries={"mode": "adaptive",
                                                                                      "max_attempts": 10})),
                                 os.environ["NOTIFY_STATE_MACHINE_ARN"])
    return ledger, start


_METRIC = {
    RouteOutcome.STARTED: "NoticeStarted",
    RouteOutcome.DUPLICATE: "DuplicateDelivery",
    RouteOutcome.REJECTED: "RejectedStatusChange",
    RouteOutcome.IGNORED: "IgnoredRecord",
}


@tracer.capture_method
def record_handler(record: DynamoDBRecord) -> None:
    raw = record.raw_event.get("dynamodb") or {}
    ledger, start = ports()
    routed = route(record.event_id, record.raw_event.get("eventName", ""), raw.get("NewImage"), raw.get("OldImage"),
                   ledger=ledger, start=start)
    metrics.add_metric(name=_METRIC[routed.outcome], unit=MetricUnit.Count, value=1)
    log = logger.warning if routed.outcome is RouteOutcome.REJECTED else logger.info
    log("status change routed", extra={"outcome": routed.outcome.value, "notification_id": routed.notification_id,
                                       "reason": routed.reason, "sequence_number": raw.get("SequenceNumber")})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
