"""In-process Lambda runtime: runs the real handler of a deployed function, with its own environment."""

from __future__ import annotations

import gc
import importlib.util
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FunctionCode:
    name: str  # the physical function name moto gave it
    logical_id: str
    folder: Path
    handler: str  # "module.function"
    memory_mb: int = 128
    timeout_s: int = 3
    environment: dict[str, str] = field(default_factory=dict)


class LambdaContext:
    """The attributes powertools and handlers read from a real Lambda context."""

    def __init__(self, code: FunctionCode, region: str, account: str) -> None:
        self.function_name = code.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{code.name}"
        self.memory_limit_in_mb = code.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{code.name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + code.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _RoutedStdout(io.TextIOBase):
    """sys.stdout stand-in: a thread inside a handler writes to that invocation's log buffer."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._local = threading.local()

    def begin(self) -> io.StringIO:
        self._local.buffer = io.StringIO()
        return self._local.buffer

    def end(self) -> None:
        self._local.buffer = None

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        return (buffer or self._real).write(text)

    def flush(self) -> None:
        self._real.flush()

    def writable(self) -> bool:
        return True


class _ThreadEnviron(MutableMapping[str, str]):
    """os.environ stand-in: a thread running a handler sees its function's variables on top of the process's, as
    each Lambda instance has its own environment. Other threads (moto's workers, the pollers) see the process's.
    This is what lets invocations run side by side instead of one at a time under a process-wide lock."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._local = threading.local()

    def overlay(self) -> dict[str, str] | None:
        return getattr(self._local, "env", None)

    def set_overlay(self, env: dict[str, str] | None) -> None:
        self._local.env = env

    def __getitem__(self, key: str) -> str:
        env = self.overlay()
        if env is not None and key in env:
            return env[key]
        return self._real[key]

    # `get` and `in` directly (the mapping mixins go through __getitem__ and a KeyError): botocore, powertools and
    # the handlers ask for variables hundreds of times per notice
    def get(self, key: str, default: Any = None) -> Any:
        env = self.overlay()
        if env is not None and key in env:
            return env[key]
        return self._real.get(key, default)

    def __contains__(self, key: object) -> bool:
        env = self.overlay()
        return (env is not None and key in env) or key in self._real

    def __setitem__(self, key: str, value: str) -> None:
        env = self.overlay()
        if env is not None:
            env[key] = value
        else:
            self._real[key] = value

    def __delitem__(self, key: str) -> None:
        env = self.overlay()
        if env is not None and key in env:
            del env[key]
            return
        del self._real[key]

    def __iter__(self) -> Any:
        env = self.overlay()
        if env is None:
            return iter(list(self._real))
        return iter(list({**dict.fromkeys(self._real), **dict.fromkeys(env)}))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self.items())

    # os.environ's own extras some libraries call
    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _thread_environ() -> _ThreadEnviron:
    if not isinstance(os.environ, _ThreadEnviron):
        os.environ = _ThreadEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003 - a view, not a reset
    return os.environ  # type: ignore[return-value]


@dataclass
class LogLine:
    function: str
    line: str


@dataclass
class Runtime:
    region: str
    account: str
    layer_paths: list[Path] = field(default_factory=list)
    base_env: dict[str, str] = field(default_factory=dict)
    echo_logs: bool = False

    def __post_init__(self) -> None:
        self._functions: dict[str, FunctionCode] = {}
        self._modules: dict[str, list[Any]] = {}
        self._busy: set[Any] = set()  # instances running an invocation
        # Each invocation's environment lives in its own thread (_ThreadEnviron); this lock only guards the pool.
        self._lock = threading.RLock()
        self._environ = _thread_environ()
        self.logs: list[LogLine] = []
        self.invocations: dict[str, int] = {}
        self.active = 0  # invocations started and not finished (waiting for the lock included)
        self._count_lock = threading.Lock()
        # Cold starts run one at a time. In Lambda each instance is a process of its own; here every instance of a
        # function shares the process's `logging` loggers, and powertools' Logger configures its service's logger
        # in steps (the handler added, then its formatter): a second instance imported meanwhile found the logger
        # half configured and its first invocation failed ("'NoneType' object has no attribute 'append_keys'": the
        # router's batch retried, and a status change could end on the failure queue).
        self._cold_starts = threading.Lock()
        self._current = threading.local()  # this thread's invocation: its environment, nesting depth, priority
        # Senders first (see `gate`): how many threads are running a first invocation and not pausing.
        self._first = 0
        self._first_changed = threading.Condition(threading.Lock())
        self.gate_waits = 0  # AWS calls that waited at the gate (a figure for the benchmarks)
        if not isinstance(sys.stdout, _RoutedStdout):
            sys.stdout = _RoutedStdout(sys.stdout)
        self._stdout: _RoutedStdout = sys.stdout  # type: ignore[assignment]
        for path in self.layer_paths:
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))

    def register(self, code: FunctionCode) -> None:
        self._functions[code.name] = code

    def function(self, logical_id: str) -> FunctionCode:
        for code in self._functions.values():
            if code.logical_id == logical_id:
                return code
        raise KeyError(logical_id)

    def _module(self, code: FunctionCode) -> Any:
        """A free instance of the function (its handler module, with its module-level state). One invocation
        at a time per instance, as in Lambda: a second invocation arriving meanwhile gets a second instance (a
        cold start of its own, imported outside the pool's lock)."""
        with self._lock:
            instances = self._modules.setdefault(code.name, [])
            for module in instances:
                if module not in self._busy:
                    self._busy.add(module)
                    return module
            serial = self._serial = getattr(self, "_serial", 0) + 1
        module_file, _, _ = code.handler.rpartition(".")
        path = code.folder / f"{module_file.replace('.', '/')}.py"
        spec = importlib.util.spec_from_file_location(f"_lambda_{code.logical_id}_{serial}", path)
        assert spec and spec.loader, path
        module = importlib.util.module_from_spec(spec)
        try:
            with self._cold_starts:
                spec.loader.exec_module(module)
        finally:
            # A handler turns collection off for its imports and freezes what they loaded. Here one process runs every
            # function and the local cloud's own state: put that back and turn collection on (also after an import
            # that failed, where Lambda would discard the environment), so the process collects as it would without
            # handlers.
            gc.unfreeze()
            gc.enable()
        with self._lock:
            instances.append(module)
            self._busy.add(module)
        return module

    def invoke(self, function_name: str, event: Any, environment: dict[str, str] | None = None, *,
               first: bool = False) -> tuple[str, bool, str]:
        """Run the handler; returns (payload_json, is_error, logs) like moto's `_invoke_lambda`. `first`: this
        invocation goes before the others at every AWS call they make while it runs (see `gate`)."""
        code = self._functions.get(function_name)
        if code is None:
            message = f"function {function_name} is not one of this stack's functions"
            return json.dumps({"errorType": "ResourceNotFoundException", "errorMessage": message}), True, message
        env = {**self.base_env, **code.environment, **(environment or {})}
        env = {k: str(v) for k, v in env.items()}  # Lambda hands every variable over as a string (Number params)
        env |= {"AWS_LAMBDA_FUNCTION_NAME": code.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(code.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region}
        with self._count_lock:
            self.active += 1
        outer_first = getattr(self._current, "first", False)
        promote = first and not outer_first
        if promote:
            self._current.first = True
            self._count_first(+1)
        try:
            return self._invoke_locked(code, env, event)
        finally:
            if promote:
                self._count_first(-1)
                self._current.first = False
            with self._count_lock:
                self.active -= 1

    # ------------------------------------------------------------------ senders first
    # In Lambda every invocation has a CPU of its own; here they all share one interpreter, where a paced sender is
    # a few threads among hundreds (the router's batches, Step Functions' executions, Prepare), gets a small share
    # of it, and misses the send moments it booked while a burst is being prepared. So the invocations that send on a
    # clock (the outbox consumers) are "first": while one runs and is not pausing for its moment, every other thread
    # waits at its next AWS call (a botocore before-call handler, `localcloud.patches`), for at most GATE_MAX_WAIT_S
    # at a time, so nothing waits on a sender for long. What is gated holds no lock of the local cloud's there.
    GATE_MAX_WAIT_S = 2.0
    GATE_LEAD_S = 0.05

    def _count_first(self, step: int) -> None:
        with self._first_changed:
            self._first += step
            if self._first == 0:
                self._first_changed.notify_all()

    def gate(self, **_kwargs: Any) -> None:
        """Before an AWS call: a thread that is not a sender waits while a sender runs (bounded)."""
        if self._first == 0 or getattr(self._current, "first", False):
            return
        with self._first_changed:
            if self._first:
                self.gate_waits += 1
                self._first_changed.wait_for(lambda: self._first == 0, timeout=self.GATE_MAX_WAIT_S)

    def _invoke_locked(self, code: FunctionCode, env: dict[str, str], event: Any) -> tuple[str, bool, str]:
        outer_overlay = self._environ.overlay()
        self._environ.set_overlay(dict(env))
        outer_env, self._current.env = getattr(self._current, "env", None), env
        self._current.depth = getattr(self._current, "depth", 0) + 1
        self._route_stdout()
        outer_buffer = getattr(self._stdout._local, "buffer", None)
        buffer = self._stdout.begin()
        instance = None
        try:
            instance = self._module(code)
            handler = getattr(instance, code.handler.rpartition(".")[2])
            result = handler(event if event is not None else {}, LambdaContext(code, self.region, self.account))
            payload, is_error = json.dumps(result, default=str), False
        except Exception as err:
            payload = json.dumps({"errorType": type(err).__name__, "errorMessage": str(err),
                                  "stackTrace": traceback.format_exception(err)[-5:]})
            is_error = True
            buffer.write(json.dumps({"level": "ERROR", "message": "handler raised",
                                     "errorType": type(err).__name__, "errorMessage": str(err)}) + "\n")
        finally:
            self._stdout._local.buffer = outer_buffer
            self._environ.set_overlay(outer_overlay)
            self._current.depth -= 1
            self._current.env = outer_env
            with self._lock:
                self._busy.discard(instance)
        text = buffer.getvalue()
        with self._count_lock:
            self.invocations[code.logical_id] = self.invocations.get(code.logical_id, 0) + 1
            self.logs.extend(LogLine(code.logical_id, line) for line in text.splitlines() if line)
        if self.echo_logs and text:
            sys.__stderr__.write(text)
        return payload, is_error, text

    def _route_stdout(self) -> None:
        """print() (powertools Metrics' EMF lines) looks sys.stdout up at call time, and test runners swap it: put
        the router back in front of whatever is there now, so a handler's lines reach its own log buffer and
        everyone else's reach the stream they were meant for."""
        with self._lock:
            current = sys.stdout
            if current is not self._stdout:
                self._stdout._real = current
                sys.stdout = self._stdout

    def pause(self, seconds: float) -> None:
        """A handler waiting (a sender pacing itself). Invocations run side by side, so this is a plain sleep; a
        first invocation lets the others go while it sleeps, and takes the interpreter back GATE_LEAD_S before its
        moment, so that the others are at their gate, not in the middle of a call, when it wakes."""
        if not getattr(self._current, "first", False):
            time.sleep(seconds)
            return
        self._count_first(-1)
        try:
            time.sleep(max(0.0, seconds - self.GATE_LEAD_S))
        finally:
            self._count_first(+1)
        time.sleep(min(seconds, self.GATE_LEAD_S))

    def moto_hook(self, function: Any, event: Any) -> tuple[str, bool, str]:
        """Replacement for moto's LambdaFunction._invoke_lambda."""
        return self.invoke(function.function_name, event, dict(function.environment_vars or {}))
