"""Every 15 minutes: open review cases past their deadline (or whose first alert failed) alert the ops topic."""

import functools
import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loan_notify.alerts import SnsAlerts
from loan_notify.review import ReviewCases, realert_overdue

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # X-Ray patches only the AWS SDK this function uses
metrics = Metrics()


@functools.cache
def ports() -> tuple[ReviewCases, SnsAlerts]:
    """Built once per cold start, on first use (importing this module builds no client)."""
    return (ReviewCases(boto3.resource("dynamodb").Table(os.environ["REVIEW_CASES_TABLE"])),
            SnsAlerts(boto3.client("sns"), os.environ["OPS_ALERTS_TOPIC_ARN"]))



@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    failed: list[str] = []

    def on_error(case_id: str, err: Exception) -> None:
        failed.append(case_id)
        logger.exception("review case alert failed; the next run tries again", extra={"case_id": case_id})

    cases, alerts = ports()
    realerted = realert_overdue(cases=cases, alerts=alerts, on_error=on_error)
    metrics.add_metric(name="ReviewCaseOverdue", unit=MetricUnit.Count, value=len(realerted))
    if realerted:
        logger.warning("overdue review cases re-alerted", extra={"case_ids": realerted})
    return {"realerted": realerted, "failed": failed}
