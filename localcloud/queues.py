"""SQS -> Lambda delivery with the semantics of a real event source mapping.

moto invokes a queue's function synchronously inside SendMessage, once, all or nothing. Here each mapping gets
poller threads (ScalingConfig.MaximumConcurrency of them, 2 by default) that, like Lambda's:
- receive up to BatchSize visible messages, hiding them for the queue's visibility timeout;
- invoke the function with an SQS event (receipt handles, ApproximateReceiveCount, the queue ARN);
- with ReportBatchItemFailures delete the messages that did not fail; on a function error delete none;
- leave failed messages to reappear when their visibility timeout (or the one the function set) ends, and the
  queue's redrive policy moves a message received maxReceiveCount times to its dead-letter queue (moto does).
Visibility timeouts run on the local cloud's time scale (see `localcloud.patches`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

Invoke = Callable[[str, dict[str, Any]], tuple[str, bool, str]]
_RECEIVE_LOCK = threading.Lock()


class QueuePoller:
    def __init__(self, backend: Any, queue: Any, esm: Any, invoke: Invoke, time_scale: float) -> None:
        self._backend = backend
        # moto's visibility timeouts run on the time scale (localcloud.patches): this one stays in real seconds
        self._real_visibility_timeout = int(int(queue.visibility_timeout) / (time_scale or 0.001))
        self.queue = queue
        self.esm = esm
        self.function_name = esm.function_arn.split(":function:")[1].split(":")[0]
        self._invoke = invoke
        self._stop = False
        self._busy = 0
        self._lock = threading.Lock()
        self.invocations = 0
        self.errors: list[str] = []
        concurrency = int((esm.scaling_config or {}).get("MaximumConcurrency", 2))
        self._threads = [threading.Thread(target=self._run, name=f"sqs-poller-{self.function_name}-{n}",
                                          daemon=True) for n in range(concurrency)]
        for thread in self._threads:
            thread.start()

    @property
    def batch_size(self) -> int:
        return int(self.esm.batch_size or 10)

    def _record(self, message: Any) -> dict[str, Any]:
        return {
            "messageId": message.id, "receiptHandle": message.receipt_handle, "body": message.body,
            "attributes": {"ApproximateReceiveCount": str(message.approximate_receive_count),
                           "SentTimestamp": str(message.sent_timestamp),
                           "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp)},
            "messageAttributes": {}, "md5OfBody": message.body_md5, "eventSource": "aws:sqs",
            "eventSourceARN": self.queue.queue_arn, "awsRegion": self.queue.region,
        }

    def _run(self) -> None:
        while not self._stop:
            messages: list[Any] = []
            with self._lock:
                self._busy += 1
            try:
                with _RECEIVE_LOCK:  # moto's receive is not thread-safe: two pollers could get one message
                    # Hidden for the visibility timeout in real seconds while the function runs (its run time is
                    # real, not simulated); a failed batch reappears after the scaled timeout (below).
                    messages = self._backend.receive_message(self.queue.name, self.batch_size, 0,
                                                             self._real_visibility_timeout)
                if messages:
                    self._deliver(messages)
            except Exception as err:  # noqa: BLE001 - a poller never dies: the messages reappear and are retried
                self.errors.append(f"{type(err).__name__}: {err}")
            finally:
                with self._lock:
                    self._busy -= 1
            if not messages:  # woken at once by a new message (moto notifies), else look again shortly
                with self.queue._messages_lock:
                    self.queue._messages_lock.wait(0.05)

    def _deliver(self, messages: list[Any]) -> None:
        self.invocations += 1
        hidden_until = {m.id: m.visible_at for m in messages}  # as received: hidden in real seconds while it runs
        payload, is_error, _logs = self._invoke(self.function_name, {"Records": [self._record(m)
                                                                                  for m in messages]})
        if is_error:  # every message reappears after the queue's visibility timeout
            failed = {m.id for m in messages}
        else:
            try:
                failed = {f["itemIdentifier"]
                          for f in (json.loads(payload or "{}") or {}).get("batchItemFailures", [])}
            except (ValueError, AttributeError):
                failed = {m.id for m in messages}
        for message in messages:
            if message.id not in failed:
                self._backend.delete_message(self.queue.name, message.receipt_handle)
            elif message.visible_at == hidden_until[message.id]:
                # A failed message reappears after the queue's visibility timeout (in simulated seconds), unless the
                # function changed it (a send put back for its pace keeps its own). AWS counts that timeout from the
                # receive; here it counts from the function's end, since the run itself is real time (hidden in
                # real seconds meanwhile).
                self._backend.change_message_visibility(self.queue.name, message.receipt_handle,
                                                        int(self.queue.visibility_timeout))

    def idle(self) -> bool:
        with self._lock:
            busy = self._busy
        return busy == 0 and not any(True for m in self.queue._messages)

    def describe(self) -> str:
        """The queue, its consumer and what it holds (for a wait that gave up)."""
        from moto.core.utils import unix_time_millis

        now = unix_time_millis()
        messages = list(self.queue._messages)
        hidden = [m.visible_at - now for m in messages if m.visible_at > now]
        with self._lock:
            busy = self._busy
        return (f"{self.queue.name} -> {self.function_name}: {busy} batches in hand, {len(messages)} messages"
                + (f", {len(hidden)} invisible for up to {max(hidden) / 1000:.1f} s more" if hidden else ""))

    def stop(self) -> None:
        self._stop = True


class QueuePump:
    """Takes the SQS event source mappings away from moto's synchronous delivery and polls them instead."""

    def __init__(self, invoke: Invoke, time_scale: float) -> None:
        self._invoke = invoke
        self._scale = time_scale
        self.pollers: list[QueuePoller] = []

    def attach(self, account: str, region: str) -> None:
        from moto.sqs.models import sqs_backends

        backend = sqs_backends[account][region]
        for queue in list(backend.queues.values()):
            mappings = dict(queue.lambda_event_source_mappings)
            queue.lambda_event_source_mappings.clear()
            for esm in mappings.values():
                self.pollers.append(QueuePoller(backend, queue, esm, self._invoke, self._scale))

    def idle(self) -> bool:
        return all(p.idle() for p in self.pollers)

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
