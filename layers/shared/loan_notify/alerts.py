from __future__ import annotations

from typing import Any


class SnsAlerts:
    """The ops alerts topic. Messages carry ids and reasons only."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, subject: str, body: str) -> None:
        self._client.publish(TopicArn=self._topic_arn, Subject=subject, Message=body)
