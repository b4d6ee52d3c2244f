"""Delivery receipts (SES and End User Messaging SMS events via SNS, app reads) -> ledger + callback."""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import functools
import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loan_notify.borrowers import Borrowers
from loan_notify.deliveries import Deliveries
from loan_notify.executions import TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.receipts import apply_receipt, parse_event
from loan_notify.review import ReviewCases, close_case_if_delivered
from loan_notify.vocabulary import Channel

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # X-Ray patches only the AWS SDK this function uses
metrics = Metrics()


@functools.cache
def ports() -> dict:
    """Built once per cold start, on first use (importing this module builds no client)."""
    dynamodb = boto3.resource("dynamodb")
    return {"ledger": Ledger(dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"])),
            "deliveries": Deliveries(dynamodb.Table(os.environ["DELIVERIES_TABLE"])),
            "contacts": Borrowers(dynamodb.Table(os.environ["BORROWERS_TABLE"])),
            "callbacks": TaskCallbacks(boto3.client("stepfunctions")),
            "cases": ReviewCases(dynamodb.Table(os.environ["REVIEW_CASES_TABLE"]))}
# Confirmed deliveries per channel (the dashboard's "delivered per channel")
DELIVERED_METRIC = {Channel.SMS: "DeliveredSms", Channel.EMAIL: "DeliveredEmail", Channel.PUSH: "DeliveredPush",
                    Channel.INBOX: "DeliveredInbox"}


def close_case(notification_id: str) -> None:
    p = ports()
    closed = close_case_if_delivered(notification_id, ledger=p["ledger"], cases=p["cases"], callbacks=p["callbacks"])
    if closed:
        logger.info("review case closed by a late receipt", extra={"case_id": closed})


def count_delivered(channel: str) -> None:
    metrics.add_metric(name=DELIVERED_METRIC[Channel(channel)], unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    outcomes: dict[str, int] = {}
    for receipt in parse_event(event):
        p = ports()
        outcome = apply_receipt(receipt, deliveries=p["deliveries"], ledger=p["ledger"], callbacks=p["callbacks"],
                                contacts=p["contacts"], on_late_delivery=close_case, on_confirmed=count_delivered)
        outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
        metrics.add_metric(name=f"Receipt_{outcome.value}", unit=MetricUnit.Count, value=1)
        logger.info("receipt applied", extra={"message_id": receipt.message_id, "source": receipt.source,
                                              "status": receipt.status.value, "outcome": outcome.value})
    if not outcomes:
        metrics.add_metric(name="Receipt_none", unit=MetricUnit.Count, value=1)
    return outcomes

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
