"""State machine step: record in the ledger what the execution itself decided (a receipt deadline passed, a notice
left undelivered), so every change to a notice goes through the ledger's hash chain."""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import functools
import os
from typing import Annotated, Literal

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, RootModel

from loan_notify.ledger import Ledger
from loan_notify.notify import deadline_passed, undeliverable

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class DeadlinePassed(BaseModel):
    action: Literal["deadline_passed"]
    notification_id: str
    attempt: int = Field(ge=1)
    channel: str
    deadline_s: int = Field(ge=0)


class Undeliverable(BaseModel):
    action: Literal["undeliverable"]
    notification_id: str
    reason: str = Field(min_length=1, max_length=100)


class OutcomeRequest(RootModel[Annotated[DeadlinePassed | Undeliverable, Field(discriminator="action")]]):
    pass


@functools.cache
def ledger() -> Ledger:
    return Ledger(boto3.resource("dynamodb").Table(os.environ["NOTIFICATIONS_TABLE"]))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=OutcomeRequest)
def lambda_handler(event: OutcomeRequest, context: LambdaContext) -> dict:
    request = event.root
    logger.append_keys(notification_id=request.notification_id, action=request.action)
    if isinstance(request, DeadlinePassed):
        recorded = deadline_passed(request.notification_id, request.attempt, deadline_s=request.deadline_s,
                                   ledger=ledger())
        metrics.add_metric(name="ReceiptDeadlinePassed", unit=MetricUnit.Count, value=1)
    else:
        recorded = undeliverable(request.notification_id, request.reason, ledger=ledger())
        metrics.add_metric(name="NoticeUndelivered", unit=MetricUnit.Count, value=1)
    logger.info("outcome recorded", extra={"recorded": recorded})
    return {"recorded": recorded}

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
