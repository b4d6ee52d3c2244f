from __future__ import annotations

from typing import Any

from loan_notify.safe_text import printable, shell_quote

SUBJECT_MAX = 100  # SNS: printable ASCII, no line breaks, at most 100 characters


def resolve_command(case_id: str) -> str:
    """The command an alert suggests: the case id is one quoted shell word, whatever it holds."""
    return (f"python -m loan_notify_ops cases resolve {shell_quote(case_id)} "
            "--decision reached_by_phone|contact_corrected|closed --note '...' --by <you>")


def subject_line(text: str) -> str:
    """An alert subject: control characters made visible, then ASCII only (SNS refuses anything else)."""
    return printable(text).encode("ascii", "backslashreplace").decode()[:SUBJECT_MAX]


class SnsAlerts:
    """The ops alerts topic. Messages carry ids and reasons only; borrower-controlled values arrive escaped."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, subject: str, body: str) -> None:
        self._client.publish(TopicArn=self._topic_arn, Subject=subject_line(subject),
                             Message=printable(body, keep_newlines=True))
