"""State machine step: no channel delivered the notice; open a review case for a person and wait on it."""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import functools
import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from loan_notify.alerts import SnsAlerts
from loan_notify.executions import TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.review import ReviewAlertNotSent, ReviewCases, ReviewStep, open_case

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # X-Ray patches only the AWS SDK this function uses
metrics = Metrics()


@functools.cache
def ports() -> dict:
    """Built once per cold start, on first use (importing this module builds no client)."""
    dynamodb = boto3.resource("dynamodb")
    return {"ledger": Ledger(dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"])),
            "cases": ReviewCases(dynamodb.Table(os.environ["REVIEW_CASES_TABLE"])),
            "alerts": SnsAlerts(boto3.client("sns"), os.environ["OPS_ALERTS_TOPIC_ARN"]),
            "callbacks": TaskCallbacks(boto3.client("stepfunctions"))}

ANSWER_WITHIN_S = int(os.environ.get("REVIEW_ANSWER_WITHIN_SECONDS", "14400"))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ReviewStep)
def lambda_handler(event: ReviewStep, context: LambdaContext) -> dict:
    try:
        opened = open_case(event, reason=event.reason, task_token=event.task_token, **ports(),
                           answer_within_s=ANSWER_WITHIN_S)
    except ReviewAlertNotSent:
        metrics.add_metric(name="ReviewAlertFailed", unit=MetricUnit.Count, value=1)
        raise  # the state machine retries the step: it finds the case and publishes again
    if opened.get("case_id") and "due_at" in opened:
        metrics.add_metric(name="ReviewCaseOpened", unit=MetricUnit.Count, value=1)
        logger.warning("review case opened", extra={"notification_id": event.notification_id, **opened,
                                                     "reason": event.reason})
    else:
        logger.info("no review case needed", extra={"notification_id": event.notification_id, **opened})
    return opened

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
