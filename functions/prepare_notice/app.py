"""State machine step: decide the channel plan and pin the template for one notice."""

import os

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from loan_notify.borrowers import Borrowers
from loan_notify.models import NoticeRef
from loan_notify.notify import prepare

logger = Logger()
tracer = Tracer()

_dynamodb = boto3.resource("dynamodb")
borrowers = Borrowers(_dynamodb.Table(os.environ["BORROWERS_TABLE"]))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=NoticeRef)
def lambda_handler(event: NoticeRef, context: LambdaContext) -> dict:
    logger.append_keys(notification_id=event.notification_id)
    plan = prepare(event, borrowers=borrowers)
    logger.info("notice prepared", extra={"channels": plan["channels"]})
    return plan
