"""DynamoDB stream -> Lambda delivery with the semantics of a real event source mapping.

moto delivers stream records synchronously inside the write and ignores the mapping's settings. Here each
mapping gets a poller thread that, like Lambda's:
- applies FilterCriteria (EventBridge pattern language, matched by moto's own matcher) before batching;
- batches up to BatchSize records in sequence order; with ParallelizationFactor N, up to N batches of one shard
  are in flight at once, each record's lane chosen by its item key, so one item's changes stay in order;
- on a function error retries the batch, bisecting it first when BisectBatchOnFunctionError is set;
- with ReportBatchItemFailures, checkpoints before the lowest failed sequence number and retries from it;
- after MaximumRetryAttempts (or when MaximumRecordAgeInSeconds passes) sends an invocation record to the
  OnFailure destination and moves on, so one poison record never blocks the shard for good.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

Invoke = Callable[[str, dict[str, Any]], tuple[str, bool, str]]
SendToDestination = Callable[[str, str], None]


@dataclass
class MappingStats:
    invocations: int = 0
    delivered: int = 0
    filtered: int = 0
    retries: int = 0
    bisections: int = 0
    sent_to_on_failure: int = 0
    batch_sizes: list[int] = field(default_factory=list)


def lane_of(keys: dict[str, Any], lanes: int) -> int:
    """Which of a shard's ParallelizationFactor lanes carries the changes of the item with these keys."""
    return zlib.crc32(json.dumps(keys, sort_keys=True, default=str).encode()) % lanes


@dataclass
class _Batch:
    records: list[dict[str, Any]]
    attempts: int = 0


class MappingPoller:
    def __init__(self, esm: Any, function_name: str, region: str, invoke: Invoke,
                 send_to_destination: SendToDestination, time_scale: float) -> None:
        from moto.events.models import EventPattern  # moto's EventBridge matcher: the same pattern language

        self.esm = esm
        self.function_name = function_name
        self.region = region
        self._invoke = invoke
        self._send = send_to_destination
        self._scale = time_scale
        filters = (esm.filter_criteria or {}).get("Filters", [])
        self._patterns = [EventPattern.load(f["Pattern"]) for f in filters]
        lanes = max(1, int(getattr(esm, "parallelization_factor", None) or 1))
        self._lanes: list[deque[dict[str, Any]]] = [deque() for _ in range(lanes)]
        self._cond = threading.Condition()
        self._busy = 0
        self._stop = False
        self.stats = MappingStats()
        self._stats_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(lane,), name=f"stream-poller-{function_name}-{n}",
                                          daemon=True) for n, lane in enumerate(self._lanes)]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------ settings, with Lambda's defaults
    @property
    def batch_size(self) -> int:
        return int(self.esm.batch_size or 100)

    @property
    def max_retry_attempts(self) -> int:
        value = self.esm.max_retry_attempts
        return -1 if value is None else int(value)  # -1: until the record expires

    @property
    def report_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in (self.esm.function_response_types or [])

    @property
    def on_failure_arn(self) -> str | None:
        return ((self.esm.destination_config or {}).get("OnFailure") or {}).get("Destination")

    def _count(self, name: str, n: int) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    # ------------------------------------------------------------ feeding
    def enqueue(self, record: dict[str, Any]) -> None:
        event = self._lambda_record(record)
        if self._patterns and not any(p.matches_event(event) for p in self._patterns):
            self._count("filtered", 1)
            return
        lane = self._lanes[lane_of(event["dynamodb"].get("Keys") or {}, len(self._lanes))]
        with self._cond:
            lane.append(event)
            self._cond.notify_all()

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = float(int(created.replace(tzinfo=timezone.utc).timestamp()))
        return {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": dynamodb,
            "eventSourceARN": self.esm.event_source_arn,
        }

    def idle(self) -> bool:
        with self._cond:
            return not any(self._lanes) and not self._busy

    def describe(self) -> str:
        """The mapping and what it holds (for a wait that gave up)."""
        with self._cond:
            waiting, busy = sum(len(lane) for lane in self._lanes), self._busy
        return f"-> {self.function_name}: {waiting} records waiting, {busy} batches in hand"

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        deadline = time.monotonic() + 5  # one budget for every lane: a lane mid-batch is a daemon, left to finish
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------ polling
    def _run(self, pending: deque[dict[str, Any]]) -> None:
        while True:
            with self._cond:
                while not self._stop and (not pending or not self.esm.enabled):
                    self._cond.wait(timeout=0.5)
                if self._stop:
                    return
                window = float(self.esm.max_batch_window or 0) * self._scale
                if window and len(pending) < self.batch_size:
                    self._cond.wait(timeout=window)
                batch = [pending.popleft() for _ in range(min(self.batch_size, len(pending)))]
                self._busy += 1
            try:
                self._deliver(_Batch(batch))
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _deliver(self, first: _Batch) -> None:
        work: deque[_Batch] = deque([first])
        while work:
            batch = work.popleft()
            if self._expired(batch):
                self._give_up(batch, "RecordAgeExceeded")
                continue
            self._count("invocations", 1)
            with self._stats_lock:
                self.stats.batch_sizes.append(len(batch.records))
            payload, is_error, _ = self._invoke(self.function_name, {"Records": batch.records})
            if is_error:
                if self.esm.bisect_on_error and len(batch.records) > 1:
                    self._count("bisections", 1)
                    half = len(batch.records) // 2
                    work.extendleft([_Batch(batch.records[half:], batch.attempts + 1),
                                     _Batch(batch.records[:half], batch.attempts + 1)])
                    continue
                self._retry_or_give_up(work, batch, batch.records, "RetryAttemptsExhausted")
                continue
            failed_from = self._first_failure(batch, payload)
            if failed_from is None:
                self._count("delivered", len(batch.records))
                continue
            self._count("delivered", failed_from)
            self._retry_or_give_up(work, batch, batch.records[failed_from:], "RetryAttemptsExhausted")

    def _first_failure(self, batch: _Batch, payload: str) -> int | None:
        """Index of the checkpoint: the lowest failed sequence number (None when the batch succeeded)."""
        if not self.report_item_failures:
            return None
        try:
            response = json.loads(payload or "null")
        except ValueError:
            return None
        failures = (response or {}).get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return None
        positions = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(batch.records)}
        indexes = []
        for failure in failures:
            identifier = (failure or {}).get("itemIdentifier")
            if identifier not in positions:  # Lambda treats an unknown or empty identifier as a failed batch
                return 0
            indexes.append(positions[identifier])
        return min(indexes)

    def _retry_or_give_up(self, work: deque[_Batch], batch: _Batch, records: list[dict[str, Any]],
                          condition: str) -> None:
        attempts = batch.attempts + 1
        if 0 <= self.max_retry_attempts < attempts:
            self._give_up(_Batch(records, attempts), condition)
            return
        self._count("retries", 1)
        if self._scale:
            time.sleep(min(2 ** attempts, 30) * 0.1 * self._scale)
        work.appendleft(_Batch(records, attempts))

    def _expired(self, batch: _Batch) -> bool:
        max_age = self.esm.max_record_age
        if max_age in (None, -1) or not self._scale:  # with time compressed to 0, records never age
            return False
        oldest = batch.records[0]["dynamodb"].get("ApproximateCreationDateTime") or time.time()
        return (time.time() - float(oldest)) / self._scale > float(max_age)

    def _give_up(self, batch: _Batch, condition: str) -> None:
        self._count("sent_to_on_failure", len(batch.records))
        if not self.on_failure_arn:
            return
        records = batch.records
        message = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.esm.function_arn,
                               "condition": condition, "approximateInvokeCount": batch.attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": _shard_id(self.esm.event_source_arn),
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": records[0]["dynamodb"].get("ApproximateCreationDateTime"),
                "approximateArrivalOfLastRecord": records[-1]["dynamodb"].get("ApproximateCreationDateTime"),
                "batchSize": len(records),
                "streamArn": self.esm.event_source_arn,
            },
        }
        self._send(self.on_failure_arn, json.dumps(message))


def _shard_id(stream_arn: str) -> str:
    """The table's one shard (moto keeps a single shard per table): GetShardIterator checks it. A mapping with no
    table behind it (the unit tests' pollers) names a placeholder shard."""
    from moto.dynamodb.models import dynamodb_backends

    try:
        _, _, _, region, account, resource = stream_arn.split(":", 5)
        table = dynamodb_backends[account][region].get_table(resource.split("/")[1])
        return str(table.stream_shard.id)
    except Exception:  # noqa: BLE001 - no such table or shard: the record still names its batch
        return "shardId-00000000000000000000-00000000"


class StreamPump:
    """Routes every captured stream record to a poller per event source mapping of its table."""

    def __init__(self, invoke: Invoke, send_to_destination: SendToDestination, time_scale: float) -> None:
        self._invoke = invoke
        self._send = send_to_destination
        self._scale = time_scale
        self._pollers: dict[str, MappingPoller] = {}
        self._lock = threading.Lock()

    def on_record(self, table: Any, record: dict[str, Any]) -> None:
        for esm in list(table.lambda_event_source_mappings.values()):
            self._poller(esm).enqueue(record)

    def redeliver(self, table: Any, record: dict[str, Any]) -> None:
        """Deliver a record a second time, as a retried or replayed shard would."""
        self.on_record(table, record)

    def _poller(self, esm: Any) -> MappingPoller:
        with self._lock:
            poller = self._pollers.get(esm.uuid)
            if poller is None:
                function_name = esm.function_arn.split(":function:")[1].split(":")[0]
                poller = MappingPoller(esm, function_name, esm.region, self._invoke, self._send, self._scale)
                self._pollers[esm.uuid] = poller
            return poller

    @property
    def pollers(self) -> list[MappingPoller]:
        return list(self._pollers.values())

    def wait_idle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(p.idle() for p in self.pollers):
                return
            time.sleep(0.005)
        raise TimeoutError(f"stream pollers still busy after {timeout}s: "
                           + ", ".join(f"{p.function_name} pending={len(p._pending)}" for p in self.pollers))

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
