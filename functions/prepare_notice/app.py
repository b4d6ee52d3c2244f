"""State machine step: decide the channel plan and send window for one notice, or wait for its borrower row."""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import functools
import os

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from loan_notify.borrowers import Borrowers
from loan_notify.ledger import Ledger
from loan_notify.models import PrepareRequest
from loan_notify.notify import prepare
from loan_notify.policy import BORROWER_WAIT_SECONDS

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # X-Ray patches only the AWS SDK this function uses


@functools.cache
def ports() -> tuple[Borrowers, Ledger]:
    """Built once per cold start, on first use (importing this module builds no client)."""
    dynamodb = boto3.resource("dynamodb")
    return (Borrowers(dynamodb.Table(os.environ["BORROWERS_TABLE"])),
            Ledger(dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"])))

OUTBOXES = {"critical": os.environ["CRITICAL_OUTBOX_URL"], "bulk": os.environ["BULK_OUTBOX_URL"]}
BORROWER_WAIT_S = int(os.environ.get("BORROWER_WAIT_SECONDS", BORROWER_WAIT_SECONDS))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=PrepareRequest)
def lambda_handler(event: PrepareRequest, context: LambdaContext) -> dict:
    logger.append_keys(notification_id=event.notification_id)
    borrowers, ledger = ports()
    plan = prepare(event.ref, borrowers=borrowers, ledger=ledger, waited_until=event.waited_until,
                   borrower_wait_s=BORROWER_WAIT_S, outboxes=OUTBOXES)
    logger.info("notice prepared", extra={k: plan[k] for k in ("channels", "wait_until", "superseded_by",
                                                               "borrower_missing")})
    return plan

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
