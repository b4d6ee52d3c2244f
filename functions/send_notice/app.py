"""State machine step: send one notice on one channel and record the attempt in the ledger."""

import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from loan_notify.borrowers import Borrowers
from loan_notify.channels import PROVIDER_CLIENT_CONFIG, AppInbox, SesEmail, SnsPush, SnsSms
from loan_notify.deliveries import Deliveries
from loan_notify.errors import PermanentChannelError, ProviderThrottled, SendOutcomeUnknown, TransientChannelError
from loan_notify.executions import TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.models import SendRequest
from loan_notify.notify import send
from loan_notify.vocabulary import Channel

logger = Logger()
tracer = Tracer()
metrics = Metrics()

_dynamodb = boto3.resource("dynamodb")
ledger = Ledger(_dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"]))
borrowers = Borrowers(_dynamodb.Table(os.environ["BORROWERS_TABLE"]))
deliveries = Deliveries(_dynamodb.Table(os.environ["DELIVERIES_TABLE"]))
callbacks = TaskCallbacks(boto3.client("stepfunctions"))
# Each channel has a provider in this region and a backup in BACKUP_REGION, tried in that order.
_regions = [r for r in (os.environ["AWS_REGION"], os.environ.get("BACKUP_REGION", "")) if r]
_regions = list(dict.fromkeys(_regions))
senders = {
    Channel.SMS: [SnsSms(boto3.client("sns", region_name=region, config=PROVIDER_CLIENT_CONFIG),
                         sender_id=os.environ.get("SMS_SENDER_ID", "")) for region in _regions],
    # The configuration set (event publishing) exists in the stack's region only.
    Channel.EMAIL: [SesEmail(boto3.client("sesv2", region_name=region, config=PROVIDER_CLIENT_CONFIG),
                             from_address=os.environ.get("SENDER_EMAIL", ""),
                             configuration_set=os.environ.get("EMAIL_CONFIGURATION_SET", "") if i == 0 else "")
                    for i, region in enumerate(_regions)],
    # A platform endpoint lives in one region: push has no backup provider.
    Channel.PUSH: [SnsPush(boto3.client("sns", config=PROVIDER_CLIENT_CONFIG))],
    Channel.INBOX: [AppInbox(_dynamodb.Table(os.environ["INBOX_TABLE"]))],
}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=SendRequest)
def lambda_handler(event: SendRequest, context: LambdaContext) -> dict:
    logger.append_keys(notification_id=event.notification_id, channel=event.channel.value)
    metrics.add_dimension(name="channel", value=event.channel.value)
    try:
        result = send(event, event.channel, ledger=ledger, borrowers=borrowers, senders=senders,
                      deliveries=deliveries, callbacks=callbacks, task_token=event.task_token,
                      plan=[c.value for c in event.plan] if event.plan is not None else None)
    except (PermanentChannelError, TransientChannelError, ProviderThrottled, SendOutcomeUnknown) as err:
        metrics.add_metric(name=type(err).__name__, unit=MetricUnit.Count, value=1)
        logger.warning("send failed", extra={"error": type(err).__name__, "reason": err.reason})
        raise
    except Exception:
        metrics.add_metric(name="UnexpectedSendError", unit=MetricUnit.Count, value=1)
        logger.exception("send failed unexpectedly")
        raise
    metrics.add_metric(name="NoticeSent", unit=MetricUnit.Count, value=1)
    logger.info("notice sent", extra={"provider": result["provider"], "message_id": result["message_id"]})
    return result
