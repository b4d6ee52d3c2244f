"""Outbox consumer: send each queued notice at its provider's pace and tell the waiting execution how it went.

SQS event source (one queue for critical notices, one for the rest), partial batch responses. A send that has to
wait (no token yet, a throttle, a provider outage) is put back with a visibility delay, never failed over.
"""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import functools
import json
import os
import time

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loan_notify import clock
from loan_notify.borrowers import Borrowers
from loan_notify.channels import PROVIDER_CLIENT_CONFIG, AppInbox, SesEmail, SmsVoiceSms, SnsPush
from loan_notify.contacts import signing_secret
from loan_notify.deliveries import Deliveries
from loan_notify.executions import TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.models import SendRequest
from loan_notify.notify import send
from loan_notify.outbox import Requeue, deliver
from loan_notify.pacing import DynamoPaceStore, Pacer
from loan_notify.reach import served_countries
from loan_notify.templates import DEFAULT_SMS_SEGMENT_BUDGET
from loan_notify.unsubscribe import UnsubscribeLinks
from loan_notify.vocabulary import Channel

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # X-Ray patches only the AWS SDK this function uses
metrics = Metrics()
# A batch whose every send must wait is not an error: each record goes back with its own delay (an error would hide
# the whole batch for the queue's visibility timeout).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class PutBack(Exception):
    """Not a failure: the message goes back to the queue for the visibility delay already set."""


@functools.cache
def ports() -> dict:
    """Built once per cold start, on first use (an import of this module builds no client)."""
    dynamodb = boto3.resource("dynamodb")
    # Each channel has a provider in this region and a backup in BACKUP_REGION, tried in that order.
    regions = list(dict.fromkeys(r for r in (os.environ["AWS_REGION"], os.environ.get("BACKUP_REGION", "")) if r))
    # Each region's provider names its own configuration set: the backup region's come from backup-region.yaml.
    email_sets = [os.environ.get("EMAIL_CONFIGURATION_SET", ""), os.environ.get("BACKUP_EMAIL_CONFIGURATION_SET", "")]
    sms_sets = [os.environ["SMS_CONFIGURATION_SET"], os.environ.get("BACKUP_SMS_CONFIGURATION_SET", "")]
    # The primary names its protect configuration in each call; the backup's is attached to its configuration set.
    protect = [os.environ.get("SMS_PROTECT_CONFIGURATION_ID", ""), ""]
    senders = {
        Channel.SMS: [SmsVoiceSms(boto3.client("pinpoint-sms-voice-v2", region_name=region,
                                               config=PROVIDER_CLIENT_CONFIG),
                                  configuration_set=sms_sets[min(i, 1)], protect_configuration_id=protect[min(i, 1)],
                                  served=served_countries(os.environ.get("SERVED_COUNTRIES")))
                      for i, region in enumerate(regions)],
        Channel.EMAIL: [SesEmail(boto3.client("sesv2", region_name=region, config=PROVIDER_CLIENT_CONFIG),
                                 from_address=os.environ.get("SENDER_EMAIL", ""),
                                 configuration_set=email_sets[min(i, 1)])
                        for i, region in enumerate(regions)],
        # A platform endpoint lives in one region: push has no backup provider.
        Channel.PUSH: [SnsPush(boto3.client("sns", config=PROVIDER_CLIENT_CONFIG))],
        Channel.INBOX: [AppInbox(dynamodb.Table(os.environ["INBOX_TABLE"]))],
    }
    rates = {"sms-voice": float(os.environ["SMS_SEND_RATE"]), "ses-v2": float(os.environ["EMAIL_SEND_RATE"]),
             "sns-push": float(os.environ["PUSH_SEND_RATE"])}
    ledger = Ledger(dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"]))
    pacer = Pacer(DynamoPaceStore(dynamodb.Table(os.environ["PACING_TABLE"])), rates, clock=clock.epoch_seconds)
    return {
        "ledger": ledger, "senders": senders,
        "send": functools.partial(_send, ledger=ledger, senders=senders, pacer=pacer, observe=count_provider_call,
                                  sms_segments=int(os.environ.get("SMS_SEGMENT_BUDGET", DEFAULT_SMS_SEGMENT_BUDGET)),
                                  preferences_url=os.environ.get("PREFERENCES_URL") or None,
                                  unsubscribe=_unsubscribe_links(),
                                  borrowers=Borrowers(dynamodb.Table(os.environ["BORROWERS_TABLE"])),
                                  deliveries=Deliveries(dynamodb.Table(os.environ["DELIVERIES_TABLE"]))),
        "callbacks": TaskCallbacks(boto3.client("stepfunctions")),
        "sqs": boto3.client("sqs"),
    }


def _unsubscribe_links() -> UnsubscribeLinks | None:
    """The one-click unsubscribe URLs of non-critical emails: the borrower API's route, signed with a key derived
    from its signing secret (read once per cold start). Without BORROWER_API_URL (a deploy with no borrower API),
    emails carry no List-Unsubscribe; with it, a missing or empty secret fails instead of sending unsigned links."""
    api_url = os.environ.get("BORROWER_API_URL", "")
    if not api_url:
        return None
    return UnsubscribeLinks(api_url, signing_secret(boto3.client("secretsmanager"),
                                                    os.environ.get("VERIFY_SECRET_ARN", ""),
                                                    "cannot sign unsubscribe links"))


# Every provider call, by how it went: the dashboard's provider throttles and the provider error-rate alarm.
PROVIDER_METRICS = {"sent": ["ProviderCall"], "refused": ["ProviderCall"], "unknown": ["ProviderCall"],
                    "throttled": ["ProviderCall", "ProviderThrottled"], "error": ["ProviderCall", "ProviderError"]}


def count_provider_call(provider: str, outcome: str) -> None:
    for name in PROVIDER_METRICS[outcome]:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def _send(request: SendRequest, channel: Channel, outage_budget: int | None = None, **kwargs) -> dict:
    return send(request, channel, plan=[c.value for c in request.plan] if request.plan is not None else None,
                decided_at=request.decided_at, outage_budget=outage_budget, **kwargs)


MAX_WAIT_IN_PLACE_S = 5.0  # longer waits put the message back instead


def _waiter(context: LambdaContext | None):
    def wait(seconds: float) -> bool:
        left_s = context.get_remaining_time_in_millis() / 1000 if context is not None else 60.0
        if seconds > MAX_WAIT_IN_PLACE_S or seconds > left_s - 5:
            return False
        clock.sleep(seconds)
        return True

    return wait


@functools.cache
def _queue_url(queue_arn: str) -> str:
    return ports()["sqs"].get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]


@tracer.capture_method
def record_handler(record: SQSRecord, context: LambdaContext | None = None) -> None:
    request = SendRequest.model_validate(json.loads(record.body))
    logger.append_keys(notification_id=request.notification_id, channel=request.channel.value)
    p = ports()
    outcome = deliver(request, send=p["send"], callbacks=p["callbacks"], ledger=p["ledger"],
                      providers_per_channel=len(p["senders"].get(request.channel, [])), wait=_waiter(context))
    if isinstance(outcome, Requeue):
        metrics.add_metric(name=f"SendPutBack_{outcome.why}", unit=MetricUnit.Count, value=1)
        p["sqs"].change_message_visibility(QueueUrl=_queue_url(record.event_source_arn),
                                           ReceiptHandle=record.receipt_handle,
                                           VisibilityTimeout=max(0, min(43_200, round(outcome.seconds + 0.499))))
        raise PutBack(outcome.why)
    metrics.add_metric(name=f"Send_{outcome['told']}", unit=MetricUnit.Count, value=1)
    if outcome["told"] == "sent" and request.plan and request.channel != request.plan[0]:
        metrics.add_metric(name="SendFallback", unit=MetricUnit.Count, value=1)  # went out on a later channel
    logger.info("send settled", extra={"told": outcome["told"], "provider": outcome.get("provider"),
                                       "message_id": outcome.get("message_id")})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    started = time.monotonic()
    response = process_partial_response(event=event, record_handler=functools.partial(record_handler,
                                                                                         context=context),
                                        processor=processor, context=context)
    metrics.add_metric(name="OutboxBatchMs", unit=MetricUnit.Milliseconds,
                       value=(time.monotonic() - started) * 1000)
    return response

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
