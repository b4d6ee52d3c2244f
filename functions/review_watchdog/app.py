"""Every 15 minutes: open review cases past their deadline (or whose first alert failed) alert the ops topic, and
the service levels are measured: open and overdue cases, the age of the oldest undelivered critical notice."""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import functools
import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from loan_notify.alerts import SnsAlerts
from loan_notify.ledger import Ledger
from loan_notify.review import ReviewCases, case_counts, oldest_undelivered_critical_age, realert_overdue

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # X-Ray patches only the AWS SDK this function uses
metrics = Metrics()


@functools.cache
def ports() -> tuple[ReviewCases, SnsAlerts, Ledger]:
    """Built once per cold start, on first use (importing this module builds no client)."""
    dynamodb = boto3.resource("dynamodb")
    return (ReviewCases(dynamodb.Table(os.environ["REVIEW_CASES_TABLE"])),
            SnsAlerts(boto3.client("sns"), os.environ["OPS_ALERTS_TOPIC_ARN"]),
            Ledger(dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"])))



@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    failed: list[str] = []

    def on_error(case_id: str, err: Exception) -> None:
        failed.append(case_id)
        logger.exception("review case alert failed; the next run tries again", extra={"case_id": case_id})

    cases, alerts, ledger = ports()
    realerted = realert_overdue(cases=cases, alerts=alerts, on_error=on_error)
    metrics.add_metric(name="ReviewCaseOverdue", unit=MetricUnit.Count, value=len(realerted))
    if realerted:
        logger.warning("overdue review cases re-alerted", extra={"case_ids": realerted})
    open_count, overdue_count = case_counts(cases=cases)
    metrics.add_metric(name="OpenReviewCases", unit=MetricUnit.Count, value=open_count)
    metrics.add_metric(name="OverdueReviewCases", unit=MetricUnit.Count, value=overdue_count)
    age_s, oldest = oldest_undelivered_critical_age(ledger=ledger)
    metrics.add_metric(name="OldestUndeliveredCriticalNoticeAge", unit=MetricUnit.Seconds, value=age_s)
    if age_s > 900:
        logger.warning("a critical notice is undelivered after 15 minutes",
                       extra={"notification_id": oldest, "age_s": round(age_s)})
    return {"realerted": realerted, "failed": failed, "open_cases": open_count, "overdue_cases": overdue_count,
            "oldest_undelivered_critical_s": round(age_s, 3), "oldest_undelivered_critical": oldest}

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
