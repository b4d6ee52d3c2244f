"""Delivery receipts (SES events via SNS, SMS delivery status via CloudWatch Logs, app reads) -> ledger + callback."""

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
tracer = Tracer()
metrics = Metrics()

_dynamodb = boto3.resource("dynamodb")
ledger = Ledger(_dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"]))
deliveries = Deliveries(_dynamodb.Table(os.environ["DELIVERIES_TABLE"]))
contacts = Borrowers(_dynamodb.Table(os.environ["BORROWERS_TABLE"]))
callbacks = TaskCallbacks(boto3.client("stepfunctions"))
cases = ReviewCases(_dynamodb.Table(os.environ["REVIEW_CASES_TABLE"]))
# Confirmed deliveries per channel (the dashboard's "delivered per channel")
DELIVERED_METRIC = {Channel.SMS: "DeliveredSms", Channel.EMAIL: "DeliveredEmail", Channel.PUSH: "DeliveredPush",
                    Channel.INBOX: "DeliveredInbox"}


def close_case(notification_id: str) -> None:
    closed = close_case_if_delivered(notification_id, ledger=ledger, cases=cases, callbacks=callbacks)
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
        outcome = apply_receipt(receipt, deliveries=deliveries, ledger=ledger, callbacks=callbacks,
                                contacts=contacts, on_late_delivery=close_case, on_confirmed=count_delivered)
        outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
        metrics.add_metric(name=f"Receipt_{outcome.value}", unit=MetricUnit.Count, value=1)
        logger.info("receipt applied", extra={"message_id": receipt.message_id, "source": receipt.source,
                                              "status": receipt.status.value, "outcome": outcome.value})
    if not outcomes:
        metrics.add_metric(name="Receipt_none", unit=MetricUnit.Count, value=1)
    return outcomes
