"""Senders first in the local Lambda runtime (localcloud.lambdas.Runtime.gate): while a first invocation runs, other
threads wait at their next AWS call (bounded); while it pauses for its moment they do not; its own calls never wait."""

from __future__ import annotations

import threading
import time

from localcloud.lambdas import FunctionCode, Runtime

HANDLER = '''
import threading
started = threading.Event()
release = threading.Event()
hooks = {}

def handler(event, context):
    started.set()
    if event.get("pause"):
        hooks["runtime"].pause(event["pause"])
    if event.get("own_call"):
        began = __import__("time").monotonic()
        hooks["runtime"].gate()
        hooks["own_wait"] = __import__("time").monotonic() - began
    release.wait(5)
    return {"ok": True}
'''


def _runtime(tmp_path) -> tuple[Runtime, object]:
    (tmp_path / "app.py").write_text(HANDLER)
    runtime = Runtime(region="us-east-1", account="123456789012")
    runtime.register(FunctionCode(name="sender", logical_id="Sender", folder=tmp_path, handler="app.handler"))
    module = runtime._module(runtime.function("Sender"))  # the instance the invocation will use
    runtime._busy.discard(module)
    module.hooks["runtime"] = runtime
    return runtime, module


def _gate_wait(runtime: Runtime) -> float:
    began = time.monotonic()
    runtime.gate()
    return time.monotonic() - began


def test_other_threads_wait_for_a_running_sender_and_go_when_it_ends(tmp_path):
    runtime, module = _runtime(tmp_path)
    runtime.GATE_MAX_WAIT_S = 5.0
    assert _gate_wait(runtime) < 0.05  # nothing first running: no wait
    sender = threading.Thread(target=runtime.invoke, args=("sender", {"own_call": True}), kwargs={"first": True})
    sender.start()
    assert module.started.wait(5)
    threading.Timer(0.3, module.release.set).start()
    waited = _gate_wait(runtime)
    sender.join(5)
    assert 0.2 < waited < 2.0  # held until the sender's invocation ended
    assert module.hooks["own_wait"] < 0.05  # the sender's own calls never wait
    assert runtime.gate_waits == 1


def test_the_wait_is_bounded(tmp_path):
    runtime, module = _runtime(tmp_path)
    runtime.GATE_MAX_WAIT_S = 0.1
    sender = threading.Thread(target=runtime.invoke, args=("sender", {}), kwargs={"first": True})
    sender.start()
    assert module.started.wait(5)
    try:
        assert 0.08 < _gate_wait(runtime) < 0.5
    finally:
        module.release.set()
        sender.join(5)


def test_a_pausing_sender_lets_others_go_until_just_before_its_moment(tmp_path):
    runtime, module = _runtime(tmp_path)
    runtime.GATE_MAX_WAIT_S = 5.0
    sender = threading.Thread(target=runtime.invoke, args=("sender", {"pause": 1.0}), kwargs={"first": True})
    sender.start()
    assert module.started.wait(5)
    time.sleep(0.1)
    assert _gate_wait(runtime) < 0.05  # paused: the others run
    time.sleep(1.0 - runtime.GATE_LEAD_S - 0.1 + 0.02)  # into the lead before its moment
    threading.Timer(0.2, module.release.set).start()
    assert _gate_wait(runtime) > 0.1  # it has the interpreter again
    sender.join(5)


def test_an_invocation_that_is_not_first_holds_nobody(tmp_path):
    runtime, module = _runtime(tmp_path)
    worker = threading.Thread(target=runtime.invoke, args=("sender", {}))
    worker.start()
    assert module.started.wait(5)
    try:
        assert _gate_wait(runtime) < 0.05
    finally:
        module.release.set()
        worker.join(5)


def test_a_handlers_thread_sees_its_functions_variables_over_the_processs_and_others_do_not():
    import threading

    from localcloud.lambdas import _ThreadEnviron

    environ = _ThreadEnviron({"SHARED": "process", "ONLY_PROCESS": "p"})
    environ.set_overlay({"SHARED": "function", "ONLY_FUNCTION": "f"})
    seen: dict = {}

    def other() -> None:
        seen["other"] = (environ.get("SHARED"), environ.get("ONLY_FUNCTION", "absent"), "ONLY_FUNCTION" in environ)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert (environ.get("SHARED"), environ.get("ONLY_FUNCTION"), environ.get("ONLY_PROCESS")) == ("function", "f", "p")
    assert environ.get("MISSING") is None and environ.get("MISSING", "d") == "d"
    assert "ONLY_FUNCTION" in environ and "ONLY_PROCESS" in environ and "MISSING" not in environ
    assert seen["other"] == ("process", "absent", False)
    assert dict(environ.items()) == {"SHARED": "function", "ONLY_PROCESS": "p", "ONLY_FUNCTION": "f"}


COLD_START = '''
import threading, time
from aws_lambda_powertools import Logger

spans = []
logger = Logger(service="cold-start-check")
began = time.monotonic()
time.sleep(0.2)  # a slow import: another instance's cold start would run meanwhile
spans.append((began, time.monotonic()))

@logger.inject_lambda_context
def handler(event, context):
    logger.info("ran")
    return {"spans": spans}
'''


def test_cold_starts_of_instances_run_one_at_a_time(tmp_path):
    """Two invocations at once get an instance each, and their imports do not overlap: the instances share the
    process's loggers, which powertools configures in steps (a second import meanwhile found the logger half
    configured, and its invocation failed)."""
    (tmp_path / "app.py").write_text(COLD_START)
    runtime = Runtime(region="us-east-1", account="123456789012")
    runtime.register(FunctionCode(name="cold", logical_id="Cold", folder=tmp_path, handler="app.handler"))
    answers: list = []
    threads = [threading.Thread(target=lambda: answers.append(runtime.invoke("cold", {}))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [is_error for _payload, is_error, _logs in answers] == [False, False]
    spans = sorted(tuple(span) for payload, _, _ in answers for span in __import__("json").loads(payload)["spans"])
    assert len(spans) == 2 and len(runtime._modules["cold"]) == 2  # two instances, each its own cold start
    assert spans[0][1] <= spans[1][0]  # the second import began after the first ended
