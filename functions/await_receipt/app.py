"""State machine step: wait for the delivery receipt of a sent message (the deadline counts from here)."""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import functools
import os

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from loan_notify.deliveries import Deliveries
from loan_notify.executions import TaskCallbacks
from loan_notify.notify import await_receipt

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # X-Ray patches only the AWS SDK this function uses


class AwaitRequest(BaseModel):
    notification_id: str
    message_id: str
    task_token: str


@functools.cache
def ports() -> tuple[Deliveries, TaskCallbacks]:
    return (Deliveries(boto3.resource("dynamodb").Table(os.environ["DELIVERIES_TABLE"])),
            TaskCallbacks(boto3.client("stepfunctions")))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=AwaitRequest)
def lambda_handler(event: AwaitRequest, context: LambdaContext) -> dict:
    logger.append_keys(notification_id=event.notification_id, message_id=event.message_id)
    deliveries, callbacks = ports()
    outcome = await_receipt(event.message_id, event.task_token, deliveries=deliveries, callbacks=callbacks)
    logger.info("waiting for the receipt", extra={"outcome": outcome})
    return {"outcome": outcome}

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
