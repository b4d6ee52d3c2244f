"""Patch 32: each invocation flushes the metrics it added, as in a Lambda instance of its own.

powertools keeps a process's metrics in class-level dicts; in the local cloud every function shares the process, so
two invocations running side by side must not flush (and clear) each other's metrics.
"""

from __future__ import annotations

import json
import threading

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit


def test_two_invocations_side_by_side_each_flush_only_their_own_metrics(cloud, capsys):
    router, sender = Metrics(namespace="LoanNotify", service="router"), Metrics(namespace="LoanNotify", service="send")
    added, flushed = threading.Barrier(2), {}

    def invocation(name: str, metrics: Metrics, metric: str) -> None:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        added.wait()  # both have added before either flushes
        flushed[name] = metrics.serialize_metric_set()
        metrics.clear_metrics()

    threads = [threading.Thread(target=invocation, args=("router", router, "RejectedStatusChange")),
               threading.Thread(target=invocation, args=("send", sender, "NoticeSent"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = {who: [m["Name"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]] for who, blob in flushed.items()}
    assert names == {"router": ["RejectedStatusChange"], "send": ["NoticeSent"]}
    assert "RejectedStatusChange" in json.dumps(flushed["router"]) and "RejectedStatusChange" not in json.dumps(
        flushed["send"])


def test_default_dimensions_set_at_import_reach_invocations_on_other_threads(cloud):
    metrics = Metrics(namespace="LoanNotify", service="defaults")
    try:
        metrics.set_default_dimensions(environment="local")  # at import, in the importing thread
        seen = {}

        def invocation() -> None:
            metrics.add_metric(name="NoticeSent", unit=MetricUnit.Count, value=1)
            seen["first"] = metrics.serialize_metric_set()["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
            metrics.clear_metrics()  # what log_metrics does after its flush
            metrics.add_metric(name="NoticeSent", unit=MetricUnit.Count, value=1)
            seen["next"] = metrics.serialize_metric_set()["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
            metrics.clear_metrics()

        thread = threading.Thread(target=invocation)
        thread.start()
        thread.join()
        assert "environment" in seen["first"] and "environment" in seen["next"]
    finally:
        metrics.clear_default_dimensions()
        metrics.clear_metrics()
