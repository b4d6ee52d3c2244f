"""One local cloud for the flow tests: template.yaml deployed into moto, in process, time compressed to 0."""

from __future__ import annotations

import io
import json
import random
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from loan_notify.chain import GENESIS, make_entry
from loan_notify.chain import verify as verify_chain
from loan_notify.ledger import Ledger
from localcloud import LocalCloud

BORROWERS_SEEN: list[dict[str, Any]] = []


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def daytime_zone() -> str:
    """An Etc/GMT zone where it is now between 12:00 and 13:00: collection hours (and the unknown-zone rule, which
    leaves en-US only 13:00-21:00 New York time) never hold a flow test by the hour it happens to run at. Tests
    about send windows set their own zone."""
    offset = (12 - datetime.now(timezone.utc).hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-8 is UTC+8


def mobile() -> str:
    return f"+86138{random.randint(0, 99_999_999):08d}"  # noqa: S311 - a valid, unique-enough CN mobile number


class Platform:
    """What the lending platform does: write borrowers and loan status changes."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.borrowers = cloud.table("BorrowersTableName")
        self.loans = cloud.table("LoansTableName")
        self.ledger = Ledger(cloud.table("NotificationsTableName"))

    def borrower(self, **fields: Any) -> dict[str, Any]:
        item = {"borrower_id": unique("B"), "name": "Ada Lovelace", "locale": "en-US", "phone": mobile(),
                "email": f"{unique('ada')}@example.com", "time_zone": daytime_zone(), **fields}
        self.borrowers.put_item(Item={k: v for k, v in item.items() if v is not None})
        BORROWERS_SEEN.append(item)
        return item

    def status(self, loan_id: str, borrower_id: str, status: str, version: int, **fields: Any) -> dict[str, Any]:
        item = {"loan_id": loan_id, "borrower_id": borrower_id, "status": status, "version": version,
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields}
        self.loans.put_item(Item=item)
        return item

    def status_without_receipt(self, loan_id: str, borrower: dict[str, Any], status: str, version: int,
                               **fields: Any) -> None:
        """Write a status change whose SMS goes out but whose carrier receipt never comes: the execution is left
        waiting for its confirmation deadline."""
        self.cloud.providers.silence("sms-voice", self.cloud.region)
        try:
            self.status(loan_id, borrower["borrower_id"], status, version, **fields)
            deadline = time.monotonic() + 30
            while not self.sms_to(borrower["phone"]) or not any(
                    a.get("message_id") for n in self.notices(loan_id) for a in n.get("attempts", [])):
                assert time.monotonic() < deadline, "the SMS was never sent and recorded"
                time.sleep(0.01)
        finally:
            self.cloud.providers.reset()

    def notices(self, loan_id: str) -> list[dict[str, Any]]:
        return self.ledger.by_loan(loan_id)

    def sms_to(self, phone: str) -> list[dict[str, str]]:
        return [m for m in self.cloud.sms_messages() if m["phone"] == phone]

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [m for m in self.cloud.emails() if address in m["to"]]


@pytest.fixture
def platform(cloud):
    return Platform(cloud)


@pytest.fixture
def providers(cloud):
    """The provider simulator, its knobs reset after the test."""
    yield cloud.providers
    cloud.providers.reset()


def deliveries_table(cloud: LocalCloud) -> Any:
    return cloud.table("DeliveriesTableName")


def executions_for(cloud: LocalCloud, loan_id: str) -> list[dict[str, Any]]:
    sfn = cloud.client("stepfunctions")
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=cloud.outputs["NotifyStateMachineArn"])
    return [e for page in pages for e in page["executions"] if e["name"].startswith(f"{loan_id}-")]


def receipts_of(attempt: dict[str, Any]) -> list[dict[str, Any]]:
    """An attempt's receipts (kept once per kind), in the order they happened."""
    return sorted((attempt.get("receipts") or {}).values(), key=lambda r: (r.get("at", ""), r.get("received_at", "")))


def entered_states(cloud: LocalCloud, name: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in cloud.history(name) if "stateEnteredEventDetails" in e]


def _execution_texts(cloud: LocalCloud, name: str) -> list[str]:
    described = cloud.client("stepfunctions").describe_execution(executionArn=cloud.execution_arn(name))
    return [described.get("input", ""), described.get("output", ""), json.dumps(cloud.history(name), default=str)]


def assert_no_personal_data_anywhere(cloud: LocalCloud, borrowers: list[dict[str, Any]],
                                     execution_names: list[str]) -> None:
    """The session-end scan: every execution's input, output and history (each fetched once) and every Lambda log
    line, against every borrower's phone, email and name."""
    secrets = {v for b in borrowers for v in (b.get("phone"), b.get("email"), b.get("name")) if v}
    for name in execution_names:
        for text in _execution_texts(cloud, name):
            leaked = [s for s in secrets if s in text]
            assert not leaked, f"personal data in execution {name}: {leaked}"
    assert cloud.runtime is not None
    for line in cloud.runtime.logs:
        leaked = [s for s in secrets if s in line.line]
        assert not leaked, f"personal data in a {line.function} log line: {leaked}"


def seed_notice(table: Any, item: dict[str, Any]) -> None:
    """Write a ledger item as earlier writes would have left it, with its hash chain (the first entry holds it)."""
    entry = make_entry(1, str(item.get("created_at", "2026-01-01T00:00:00.000Z")), {"what": "seeded", "item": item},
                       GENESIS)
    table.put_item(Item={**item, "chain": [entry], "chain_head": entry["hash"], "chain_seq": 1})


def assert_every_notice_chained(cloud: LocalCloud) -> None:
    table = cloud.table("NotificationsTableName")
    problems: list[str] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        problems += [str(p) for item in page["Items"] for p in verify_chain(item)]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert not problems, f"ledger items whose hash chain does not verify: {problems[:5]}"


def assert_no_personal_data(cloud: LocalCloud, borrower: dict[str, Any], execution_names: list[str]) -> None:
    """Execution input, output and history, and every Lambda log line, carry ids only."""
    secrets = [v for v in (borrower.get("phone"), borrower.get("email"), borrower.get("name")) if v]
    sfn = cloud.client("stepfunctions")
    for name in execution_names:
        described = sfn.describe_execution(executionArn=cloud.execution_arn(name))
        texts = [described.get("input", ""), described.get("output", ""), json.dumps(cloud.history(name),
                                                                                     default=str)]
        for secret in secrets:
            leaked = [text[max(0, text.find(secret) - 80):text.find(secret) + 40] for text in texts if secret in text]
            assert not leaked, f"personal data in execution {name}: {leaked}"
    assert cloud.runtime is not None
    for line in cloud.runtime.logs:
        for secret in secrets:
            assert secret not in line.line, f"personal data in a {line.function} log line"


@pytest.fixture
def no_make_local(monkeypatch, tmp_path):
    """The ops command against the in-process cloud: never discover a `make local` someone may be running."""
    monkeypatch.setenv("LOAN_NOTIFY_LOCAL_STATE", str(tmp_path / "none.json"))
    monkeypatch.delenv("LOAN_NOTIFY_ENDPOINT_URL", raising=False)


def ops_run(*argv: str) -> tuple[int, str, str]:
    """The ops command in process, its output kept apart from Lambda log capture (handlers run in other threads)."""
    from loan_notify_ops.cli import main as ops

    out, err = io.StringIO(), io.StringIO()
    code = ops(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()
