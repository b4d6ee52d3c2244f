"""The local cloud's SQS visibility checks (localcloud.patches 23) hand out exactly what moto's own code hands out.

Two scratch queues get the same messages and the same receives: one with the patches, one with moto's code put back
(monkeypatch). Between them they hold visible, delayed, in-flight and expired messages.
"""

from __future__ import annotations

import uuid

from localcloud import patches
from localcloud.cloud import ACCOUNT


def _moto_own(monkeypatch) -> None:
    from moto.sqs.models import Message, Queue, SQSBackend

    for owner, name in ((Queue, "messages"), (Message, "visible"), (Message, "delayed"),
                        (SQSBackend, "is_message_valid_based_on_retention_period")):
        monkeypatch.setattr(owner, name, patches._originals[(owner, name)])


def _scenario(cloud, client) -> list:
    """Messages of every kind, then receives until nothing comes; returns what each receive handed out."""
    from moto.sqs.models import sqs_backends

    name = f"patch-check-{uuid.uuid4().hex[:8]}"
    url = client.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    try:
        for n in range(6):
            client.send_message(QueueUrl=url, MessageBody=f"now-{n}")
        client.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=900)
        client.send_message(QueueUrl=url, MessageBody="expired")
        backend = sqs_backends[ACCOUNT][cloud.region]
        queue = backend.get_queue(name)
        next(m for m in queue._messages if m.body == "expired").sent_timestamp -= 120_000  # past its retention
        # two in flight for longer than the test runs: visibility timeouts run on the local cloud's time scale
        # (1 s = 2 ms in tests), so the queue's default 30 s would be 60 ms, less than a slow machine takes here;
        # 12 hours (the most SQS allows) is 86 s
        handed = [sorted(m["Body"] for m in client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=43_200).get("Messages", []))]
        for _ in range(4):
            handed.append(sorted(m["Body"] for m in client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=0).get("Messages", [])))
        handed.append(sorted(m.body for m in queue.messages))
        handed.append(sorted((m.body, m.visible, m.delayed) for m in queue._messages))
        return handed
    finally:
        client.delete_queue(QueueUrl=url)


def test_receives_hand_out_the_same_messages_with_and_without_the_speed_up(cloud, monkeypatch):
    client = cloud.client("sqs")
    patched = _scenario(cloud, client)
    with monkeypatch.context() as own:
        _moto_own(own)
        unpatched = _scenario(cloud, client)
    assert patched == unpatched
    assert ["delayed", "expired"] not in patched[1:5]  # nothing delayed was handed out
    assert any("expired" not in batch and batch for batch in patched)


def test_the_speed_up_is_installed(cloud):
    from moto.sqs.models import Message, Queue

    assert Queue.messages.fget is patches._queue_messages
    assert Message.visible.fget is patches._message_visible
