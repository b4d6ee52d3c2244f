"""`make scale-model`: a discrete-event model of the month-end burst in real AWS, driving the real Pacer.

What is modelled (simulated clock, a heap of events, nothing sleeps):

- The platform writes N REPAYMENT_DUE status changes in one batch job (default 02:00, 1,000 writes/s). The Loans
  stream has `--shards` shards, each read by `--parallelization` concurrent router batches (ParallelizationFactor);
  a batch is up to BatchSize 100 records, gathered for up to MaximumBatchingWindowInSeconds.
- The router starts one execution per record through the StartExecution token bucket (800 burst, 300/s refill).
  A throttle is retried with full-jitter exponential backoff inside the invocation (timeout 20 s); what is left
  near the timeout is returned as a partial batch failure and retried by the stream, at most MaximumRetryAttempts
  times before the failure queue.
- Executions: every state entered takes a token from the state-transition bucket (5,000 burst, 5,000/s); Prepare
  is a Lambda task sharing the account's 1,000 concurrent executions (a throttle is a Step Functions retry).
  A collection notice waits for its window (08:00-21:00) and is released across the window's first `--spread`
  seconds at an offset fixed by its id; then Prepare runs again and the notice goes to the outbox
  (`sqs:sendMessage.waitForTaskToken`): a critical queue (APPROVED, REJECTED, OVERDUE) and a bulk queue.
- Consumers (`--bulk-consumers`, `--critical-consumers`: the queues' MaximumConcurrency) take a message, ask
  their own Pacer (one per Lambda instance, one shared MemoryPaceStore standing in for the PacingTable), wait in
  process when told to, and call the provider. Providers are token buckets with one second of burst at their
  real quota (SMS `--real-sms-rate`, SES `--real-email-rate`) that THROTTLE when exceeded. A throttle lowers the
  Pacer's rate and puts the message back with a visibility delay: never a fallback, never a retry spent.
- No bulk send starts when it could not reach the provider before the window's end (21:00): such a notice is
  handed back to wait for the next window, and counted.

The Pacer is loan_notify.pacing.Pacer itself, on the simulated clock: the code the consumer Lambdas run.
Costs use us-east-1 list prices; messaging fees (carrier SMS price, SES $0.10 per 1,000) are left out.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loan_notify.pacing import MemoryPaceStore, Pacer

SMS = "sms-voice@us-east-1"
EMAIL = "ses-v2@us-east-1"
HOUR = 3600.0

PRICES = {  # us-east-1 list prices (USD)
    "sfn_transition": 0.025 / 1000,
    "sqs_request": 0.40 / 1_000_000,
    "lambda_request": 0.20 / 1_000_000,
    "lambda_gb_second_arm64": 0.0000133334,
    "dynamodb_write_unit": 0.625 / 1_000_000,
    "dynamodb_read_unit": 0.125 / 1_000_000,
}
LAMBDA_MEMORY_GB = 0.5  # template Globals MemorySize: 512

# Latencies of one call (seconds): representative figures, not measured here.
ROUTER_RECORD_S = 0.035  # ledger open + StartExecution
START_CALL_S = 0.025
PREPARE_S = 0.15
SQS_SEND_S = 0.02
POLL_S = 0.05  # an idle long-polling consumer gets a new message
PROVIDER_S = {SMS: 0.06, EMAIL: 0.08}
RECORD_SEND_S = 0.015  # the consumer records the attempt (ledger, deliveries)
RECEIPT_LAMBDA_S = 0.1
VISIBILITY_DELAY_S = 1.0  # a throttled message is visible again after this long
WRITE_UNITS_PER_LEDGER_WRITE = 2  # as `make costs` prices them: ledger items with attempts run 1-2 KB


@dataclass(frozen=True)
class Settings:
    n: int = 100_000
    sms_rate: float = 20.0  # configured (template parameter)
    real_sms_rate: float | None = None  # the provider's real quota; None: as configured
    email_rate: float = 14.0
    real_email_rate: float | None = None
    email_share: float = 0.1  # borrowers whose first channel is email
    critical: int = 20  # APPROVED notices written during the drain
    spread_s: float = 600.0
    written_at: float = 2 * HOUR
    write_rate: float = 1000.0
    shards: int = 4
    parallelization: int = 10
    batch_size: int = 100
    batching_window_s: float = 1.0
    router_timeout_s: float = 20.0
    stream_retry_attempts: int = 5
    start_burst: float = 800.0
    start_refill: float = 300.0
    transitions_burst: float = 5000.0
    transitions_rate: float = 5000.0
    lambda_concurrency: int = 1000
    bulk_consumers: int = 5
    critical_consumers: int = 2
    send_jitter_s: float = 0.05  # a send's reads and writes between its token and the provider call: 0 to this
    consumer_batch: int = 10
    ledger_writes: int = 5  # per notice, outside the pacer: open, attempt, deliveries put, receipt x2
    window_open: float = 8 * HOUR
    window_end: float = 21 * HOUR
    seed: int = 7


@dataclass
class Result:
    settings: Settings
    sent: dict[str, int] = field(default_factory=dict)  # bulk (REPAYMENT_DUE) notices accepted, per provider
    quota: dict[str, float] = field(default_factory=dict)
    drain_s: dict[str, float] = field(default_factory=dict)
    throttled: int = 0
    fallbacks: int = 0
    review_cases: int = 0
    failure_queue: int = 0
    deferred_to_next_window: int = 0
    sent_after_window: int = 0
    start_throttles: int = 0
    all_started_at: float = 0.0
    peak_concurrency: int = 0
    critical_latency_s: list[float] = field(default_factory=list)
    transitions: int = 0
    sqs_requests: int = 0
    lambda_requests: int = 0
    lambda_gb_s: float = 0.0
    pacer_writes: int = 0
    pacer_reads: int = 0
    cost_usd: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def ideal_s(self) -> float:
        """The best possible drain of the batch: N/quota of the provider that binds, or the release spread."""
        return max([self.settings.spread_s] + [self.sent[p] / self.quota[p] for p in self.sent])

    def drain_ratio(self) -> float:
        return max(self.drain_s.values()) / self.ideal_s()

    def throttled_per_notice(self) -> float:
        return self.throttled / max(1, sum(self.sent.values()))

    def cost_per_notice(self) -> float:
        return self.cost_usd["total"] / max(1, self.settings.n + self.settings.critical)

    def transitions_per_notice(self) -> float:
        return self.transitions / max(1, self.settings.n + self.settings.critical)

    def goals_met(self) -> bool:
        return (self.drain_ratio() <= 1.1 and self.throttled_per_notice() <= 0.05 and self.fallbacks == 0
                and self.review_cases == 0 and self.failure_queue == 0 and self.sent_after_window == 0
                and (not self.critical_latency_s or max(self.critical_latency_s) <= 5.0))


class Bucket:
    """A token bucket refilled continuously."""

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity, self.rate, self.tokens, self.at = capacity, rate, capacity, now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def reserve(self, now: float) -> float:
        """Take a token even if it is not there yet; returns when it is (the service slows instead of failing)."""
        self._refill(now)
        self.tokens -= 1
        return now if self.tokens >= 0 else now + (-self.tokens) / self.rate


class Outbox:
    """One SQS queue: fresh messages in order, put-back messages visible again after a delay."""

    def __init__(self) -> None:
        self.fresh: deque[int] = deque()
        self.delayed: list[tuple[float, int]] = []
        self.idle: list[int] = []

    def pop(self, now: float) -> int | None:
        if self.delayed and self.delayed[0][0] <= now:
            return heapq.heappop(self.delayed)[1]
        return self.fresh.popleft() if self.fresh else None


class Model:
    def __init__(self, s: Settings) -> None:
        self.s = s
        self.now = 0.0
        self.rng = random.Random(s.seed)
        self.events: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self.seq = 0
        self.r = Result(settings=s)
        self.real = {SMS: s.real_sms_rate or s.sms_rate, EMAIL: s.real_email_rate or s.email_rate}
        self.r.quota = dict(self.real)
        self.r.sent = {SMS: 0, EMAIL: 0}
        self.providers = {p: Bucket(rate, rate, 0.0) for p, rate in self.real.items()}
        self.starts = Bucket(s.start_burst, s.start_refill, 0.0)
        self.transitions = Bucket(s.transitions_burst, s.transitions_rate, 0.0)
        self.store = MemoryPaceStore()
        rates = {"sms-voice": s.sms_rate, "ses-v2": s.email_rate}
        self.lambdas_running: list[float] = []  # end times of running invocations (router, prepare)
        self.active = 0  # invocations that end when their owner says (router batches, consumers)
        self._build_notices()
        self._build_lanes()
        self.outboxes = {False: Outbox(), True: Outbox()}
        self.consumers: list[dict[str, Any]] = []
        for critical, count in ((False, s.bulk_consumers), (True, s.critical_consumers)):
            for _ in range(count):
                c = len(self.consumers)
                pacer = Pacer(self.store, rates, clock=self.clock, rng=random.Random(s.seed * 1000 + c))
                self.consumers.append({"pacer": pacer, "critical": critical,
                                       "since": 0.0, "in_batch": 0})
                self.outboxes[critical].idle.append(c)
        self.accepted: list[float | None] = [None] * self.total

    def clock(self) -> float:
        return self.now

    # ------------------------------------------------------------------ setup
    def _build_notices(self) -> None:
        s = self.s
        self.total = s.n + s.critical
        self.critical = [False] * s.n + [True] * s.critical
        self.written = [s.written_at + i / s.write_rate for i in range(s.n)]
        drain_guess = s.n * (1 - s.email_share) / s.sms_rate
        span = max(60.0, 0.8 * drain_guess)
        self.written += [s.window_open + 300 + span * (k + 0.5) / max(1, s.critical) for k in range(s.critical)]
        self.provider: list[str] = []
        self.release: list[float] = []
        self.lane_of: list[int] = []
        lanes = s.shards * s.parallelization
        for i in range(self.total):
            digest = hashlib.sha256(f"notice-{i}".encode()).digest()
            spread = int.from_bytes(digest[:4], "big") % 1_000_000 / 1_000_000 * s.spread_s
            email = int.from_bytes(digest[4:6], "big") % 10_000 < s.email_share * 10_000
            self.provider.append(EMAIL if email else SMS)
            self.release.append(s.window_open + spread)  # deterministic by id: the policy's planned spread
            self.lane_of.append(int.from_bytes(digest[6:10], "big") % lanes)

    def _build_lanes(self) -> None:
        lanes = self.s.shards * self.s.parallelization
        self.lanes: list[deque[int]] = [deque() for _ in range(lanes)]
        for i in sorted(range(self.total), key=lambda i: self.written[i]):
            self.lanes[self.lane_of[i]].append(i)
        self.lane_busy = [False] * lanes
        self.lane_poll_at = [float("inf")] * lanes
        self.lane_run: list[dict[str, Any]] = [{} for _ in range(lanes)]
        self.stream_attempts: dict[int, int] = {}
        for lane, records in enumerate(self.lanes):
            if records:
                self._poll_lane_at(lane, self.written[records[0]])

    # ------------------------------------------------------------------ event loop
    def at(self, when: float, handler: Callable[[Any], None], arg: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, handler, arg))

    def run(self) -> Result:
        started = time.perf_counter()
        while self.events:
            when, _, handler, arg = heapq.heappop(self.events)
            self.now = when
            handler(arg)
        self._finish()
        self.r.wall_s = time.perf_counter() - started
        return self.r

    def _lambda_start(self, duration: float | None, start: float | None = None) -> bool:
        """One invocation against the account's concurrency. duration None: it ends when its owner says."""
        running = self.lambdas_running
        while running and running[0] <= self.now:
            heapq.heappop(running)
        if len(running) + self.active >= self.s.lambda_concurrency:
            return False
        if duration is None:
            self.active += 1
        else:
            heapq.heappush(running, (self.now if start is None else start) + duration)
            self.r.lambda_gb_s += duration * LAMBDA_MEMORY_GB
        self.r.peak_concurrency = max(self.r.peak_concurrency, len(running) + self.active)
        self.r.lambda_requests += 1
        return True

    def _transition(self, when: float) -> float:
        self.r.transitions += 1
        return self.transitions.reserve(when)

    # ------------------------------------------------------------------ stream and router
    def _poll_lane_at(self, lane: int, when: float) -> None:
        if when < self.lane_poll_at[lane]:
            self.lane_poll_at[lane] = when
            self.at(when, self._poll_lane, lane)

    def _poll_lane(self, lane: int) -> None:
        if self.lane_poll_at[lane] != self.now:
            return  # superseded by an earlier poll
        self.lane_poll_at[lane] = float("inf")
        records = self.lanes[lane]
        if self.lane_busy[lane] or not records:
            return
        head = self.written[records[0]]
        if head > self.now:
            self._poll_lane_at(lane, head)
            return
        size = self.s.batch_size
        available = 0
        for i in records:
            if available == size or self.written[i] > self.now:
                break
            available += 1
        if available < size and self.now < head + self.s.batching_window_s:
            nxt = head + self.s.batching_window_s
            if len(records) >= size:
                nxt = min(nxt, max(self.now, self.written[records[size - 1]]))
            self._poll_lane_at(lane, nxt)
            return
        if not self._lambda_start(None):
            self._poll_lane_at(lane, self.now + 1.0)  # the event source mapping backs off and invokes again
            return
        self.lane_busy[lane] = True
        self.lane_run[lane] = {"batch": [records.popleft() for _ in range(available)], "pos": 0, "tries": 0,
                               "since": self.now}
        self.at(self.now + 0.03, self._route_next, lane)

    def _route_next(self, lane: int) -> None:
        run = self.lane_run[lane]
        batch, pos = run["batch"], run["pos"]
        if pos < len(batch) and self.now - run["since"] > self.s.router_timeout_s - 3.0:
            rest = batch[pos:]  # near the timeout: a partial batch failure, the stream retries the rest
            for i in reversed(rest):
                self.stream_attempts[i] = self.stream_attempts.get(i, 0) + 1
                if self.stream_attempts[i] > self.s.stream_retry_attempts:
                    self.r.failure_queue += 1
                else:
                    self.lanes[lane].appendleft(i)
            batch = batch[:pos]
        if pos >= len(batch):
            self.r.lambda_gb_s += (self.now - run["since"]) * LAMBDA_MEMORY_GB
            self.active -= 1
            self.lane_busy[lane] = False
            self._poll_lane_at(lane, self.now)
            return
        i = batch[pos]
        if self.starts.take(self.now):
            run["pos"], run["tries"] = pos + 1, 0
            if not self.critical[i]:
                self.r.all_started_at = max(self.r.all_started_at, self.now + START_CALL_S)
            self.at(self.now + START_CALL_S, self._execution_started, i)
            self.at(self.now + ROUTER_RECORD_S, self._route_next, lane)
        else:
            self.r.start_throttles += 1
            run["tries"] += 1
            backoff = self.rng.uniform(0, min(2.0, 0.05 * 2 ** run["tries"]))
            self.at(self.now + START_CALL_S + backoff, self._route_next, lane)

    # ------------------------------------------------------------------ executions
    def _prepare(self, i: int, then: Callable[[Any], None]) -> None:
        """The Prepare task, its choice, then `then` (a Lambda throttle is a Step Functions retry)."""
        when = self.now
        for attempt in range(6):
            when = self._transition(when)  # "Prepare notice" (each retry is a transition too)
            if self._lambda_start(PREPARE_S, when):
                self.at(self._transition(when + PREPARE_S), then, i)  # "Send now?"
                return
            when += 2.0 ** attempt
        self.r.review_cases += 1

    def _execution_started(self, i: int) -> None:
        self._prepare(i, self._after_first_prepare)

    def _after_first_prepare(self, i: int) -> None:
        if not self.critical[i] and self.now < self.release[i]:  # (a notice written after 21:00 is not modelled)
            self._transition(self.now)  # "Wait for the send window"
            self.at(self.release[i], self._released, i)
        else:
            self._send(i)

    def _released(self, i: int) -> None:
        self._prepare(i, self._send)

    def _send(self, i: int) -> None:
        when = self._transition(self.now)  # "Send and wait for confirmation": sqs:sendMessage.waitForTaskToken
        self.at(when + SQS_SEND_S, self._enqueue, i)

    # ------------------------------------------------------------------ outbox and consumers
    def _enqueue(self, i: int) -> None:
        self.r.sqs_requests += 3  # send, receive, delete
        box = self.outboxes[self.critical[i]]
        box.fresh.append(i)
        self._wake(box)

    def _wake(self, box: Outbox) -> None:
        if box.idle:
            c = box.idle.pop()
            self.at(self.now + POLL_S, self._consumer_next, c)

    def _wake_delayed(self, critical: bool) -> None:
        self._wake(self.outboxes[critical])

    def _consumer_next(self, c: int) -> None:
        consumer = self.consumers[c]
        box = self.outboxes[consumer["critical"]]
        i = box.pop(self.now)
        if i is None:
            if consumer["in_batch"]:
                self.active -= 1
                self.r.lambda_gb_s += (self.now - consumer["since"]) * LAMBDA_MEMORY_GB
                consumer["in_batch"] = 0
            box.idle.append(c)
            return
        if consumer["in_batch"] == 0:
            self.active += 1  # (the queue's MaximumConcurrency is far below the account's limit)
            consumer["since"] = self.now
            self.r.lambda_requests += 1
        consumer["in_batch"] += 1
        if consumer["in_batch"] > self.s.consumer_batch:
            consumer["in_batch"] = 1
            self.r.lambda_requests += 1  # the next batch is the next invocation
        self._consumer_try((c, i))

    def _consumer_try(self, arg: tuple[int, int]) -> None:
        c, i = arg
        consumer = self.consumers[c]
        provider = self.provider[i]
        if not self.critical[i] and self.now + PROVIDER_S[provider] >= self.s.window_end:
            self.r.deferred_to_next_window += 1  # handed back: the execution waits for the next window
            self.at(self.now + RECORD_SEND_S, self._consumer_next, c)
            return
        reservation = consumer["pacer"].reserve(provider, critical=self.critical[i])
        if reservation.wait > 0:
            consumer["held"] = reservation.held
            self.at(self.now + reservation.wait, self._consumer_try, arg)  # waits in process
            return
        due = reservation.due if consumer.pop("held", False) else None
        # the sender's pending-attempt write between its token and the provider call takes a varying time
        self.at(self.now + self.rng.uniform(0.0, self.s.send_jitter_s), self._provider_call, (c, i, due))

    def _provider_call(self, arg: tuple[int, int, float | None]) -> None:
        c, i, due = arg
        provider = self.provider[i]
        if due is not None and not self.consumers[c]["pacer"].on_time(provider, due):
            self._consumer_try((c, i))  # held up past its token (as send() does): a new token
            return
        accepted = self.providers[provider].take(self.now)
        self.at(self.now + PROVIDER_S[provider], self._provider_answered, (c, i, accepted))

    def _provider_answered(self, arg: tuple[int, int, bool]) -> None:
        c, i, accepted = arg
        consumer = self.consumers[c]
        provider = self.provider[i]
        if accepted:
            consumer["pacer"].succeeded(provider)
            self.accepted[i] = self.now
            if not self.critical[i]:
                self.r.sent[provider] += 1
                self.r.sent_after_window += self.now >= self.s.window_end
            self.at(self.now + RECORD_SEND_S, self._consumer_next, c)
            return
        self.r.throttled += 1  # a wait, not a failure: back to the queue, no retry spent, no fallback
        consumer["pacer"].throttled(provider)
        self.r.sqs_requests += 2  # change visibility, receive again
        box = self.outboxes[self.critical[i]]
        heapq.heappush(box.delayed, (self.now + VISIBILITY_DELAY_S, i))
        self.at(self.now + VISIBILITY_DELAY_S, self._wake_delayed, self.critical[i])
        self._consumer_next(c)

    # ------------------------------------------------------------------ results
    def _finish(self) -> None:
        s, r = self.s, self.r
        for provider in (SMS, EMAIL):
            times = [t for i, t in enumerate(self.accepted)
                     if t is not None and self.provider[i] == provider and not self.critical[i]]
            r.drain_s[provider] = (max(times) - s.window_open) if times else 0.0
        r.critical_latency_s = [self.accepted[i] - self.written[i] for i in range(s.n, self.total)
                                if self.accepted[i] is not None]
        delivered = sum(1 for t in self.accepted if t is not None)
        r.transitions += delivered  # the receipt's callback: "Notice delivered"
        r.lambda_requests += delivered  # the receipt handler
        r.lambda_gb_s += delivered * RECEIPT_LAMBDA_S * LAMBDA_MEMORY_GB
        r.pacer_writes = self.store.takes + self.store.rate_writes
        r.pacer_reads = self.store.rate_reads
        cost = {
            "step_functions": r.transitions * PRICES["sfn_transition"],
            "sqs": r.sqs_requests * PRICES["sqs_request"],
            "lambda": r.lambda_requests * PRICES["lambda_request"] + r.lambda_gb_s * PRICES["lambda_gb_second_arm64"],
            "dynamodb_pacer": r.pacer_writes * PRICES["dynamodb_write_unit"]
            + r.pacer_reads * PRICES["dynamodb_read_unit"],
            "dynamodb_ledger": self.total * s.ledger_writes * WRITE_UNITS_PER_LEDGER_WRITE
            * PRICES["dynamodb_write_unit"],
        }
        cost["total"] = sum(cost.values())
        r.cost_usd = cost


def run(settings: Settings) -> Result:
    return Model(settings).run()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def report(r: Result) -> list[str]:
    s = r.settings
    per_notice = s.n + s.critical
    lines = [f"scale model: {s.n:,} REPAYMENT_DUE written at {_clock(s.written_at)}, window {_clock(s.window_open)}"
             f"-{_clock(s.window_end)}, released over its first {s.spread_s:.0f} s; {s.critical} APPROVED during "
             f"the drain (model ran in {r.wall_s:.1f} s)"]
    for provider, configured in ((SMS, s.sms_rate), (EMAIL, s.email_rate)):
        if r.sent[provider]:
            lines.append(f"  {provider}: {r.sent[provider]:,} sent, pacer {configured:g}/s, real quota "
                         f"{r.quota[provider]:g}/s, N/quota {r.sent[provider] / r.quota[provider]:,.0f} s, last "
                         f"sent {r.drain_s[provider]:,.0f} s after the opening")
    lines.append(f"  drain {max(r.drain_s.values()):,.0f} s vs N/quota of the binding provider (or the spread) "
                 f"{r.ideal_s():,.0f} s = {r.drain_ratio():.3f} x (goal <= 1.1)")
    latency = r.critical_latency_s
    lines += [
        f"  throttled provider calls per notice: {r.throttled_per_notice():.4f} ({r.throttled:,}; goal <= 0.05)",
        f"  fallbacks: {r.fallbacks}, review cases: {r.review_cases}, failure queue: {r.failure_queue} (goal 0)",
        f"  window: sent after {_clock(s.window_end)}: {r.sent_after_window} (goal 0), handed back to the next "
        f"window: {r.deferred_to_next_window:,}",
        f"  router: StartExecution throttled {r.start_throttles:,} times (retried with backoff); every execution "
        f"started by {_clock(r.all_started_at)}; peak Lambda concurrency {r.peak_concurrency}",
    ]
    if latency:
        lines.append(f"  critical notices, write -> provider: median {statistics.median(latency):.2f} s, max "
                     f"{max(latency):.2f} s over {len(latency)} (goal <= 5 s)")
    lines += [
        f"  state transitions per notice: {r.transitions / per_notice:.2f}; SQS requests per notice: "
        f"{r.sqs_requests / per_notice:.2f}; pacer writes per notice: {r.pacer_writes / per_notice:.2f}",
        "  cost per notice (list prices, messaging fees excluded): "
        + ", ".join(f"{k} ${v / per_notice:.7f}" for k, v in r.cost_usd.items() if k != "total")
        + f"; total ${r.cost_per_notice():.6f}",
        f"  goals {'met' if r.goals_met() else 'NOT met'}",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=Settings.n)
    parser.add_argument("--sms-rate", type=float, default=Settings.sms_rate, help="configured SMS rate (/s)")
    parser.add_argument("--real-sms-rate", type=float, default=None, help="the SMS provider's real quota (/s)")
    parser.add_argument("--email-rate", type=float, default=Settings.email_rate)
    parser.add_argument("--real-email-rate", type=float, default=None)
    parser.add_argument("--email-share", type=float, default=Settings.email_share)
    parser.add_argument("--critical", type=int, default=Settings.critical, help="APPROVED written during the drain")
    parser.add_argument("--spread", type=float, default=Settings.spread_s, help="window-opening spread (s)")
    parser.add_argument("--shards", type=int, default=Settings.shards)
    parser.add_argument("--parallelization", type=int, default=Settings.parallelization)
    parser.add_argument("--send-jitter", type=float, default=Settings.send_jitter_s,
                        help="the longest time between a send token and its provider call (s)")
    parser.add_argument("--bulk-consumers", type=int, default=Settings.bulk_consumers)
    parser.add_argument("--critical-consumers", type=int, default=Settings.critical_consumers)
    args = parser.parse_args(argv)
    settings = Settings(n=args.n, sms_rate=args.sms_rate, real_sms_rate=args.real_sms_rate,
                        email_rate=args.email_rate, real_email_rate=args.real_email_rate,
                        email_share=args.email_share, critical=args.critical, spread_s=args.spread,
                        shards=args.shards, parallelization=args.parallelization,
                        send_jitter_s=args.send_jitter, bulk_consumers=args.bulk_consumers,
                        critical_consumers=args.critical_consumers)
    result = run(settings)
    print("\n".join(report(result)))
    return 0 if result.goals_met() else 1


if __name__ == "__main__":
    sys.exit(main())
