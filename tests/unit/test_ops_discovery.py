"""How the ops command finds its stack: flag, environment, make local's state file, else AWS."""

import json
import os

import pytest

from loan_notify_ops.executions import parse_duration
from loan_notify_ops.stack import STATE_FILE, OpsError, discover


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("LOAN_NOTIFY_ENDPOINT_URL", "LOAN_NOTIFY_LOCAL_STATE", "LOAN_NOTIFY_STACK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _state(folder, pid=None, stack="loan-notify-local"):
    (folder / STATE_FILE).write_text(json.dumps({"endpoint": "http://127.0.0.1:4999", "stack_name": stack,
                                                 "region": "us-east-1", "pid": pid or os.getpid()}))


def test_make_local_is_found_from_a_subdirectory_by_its_state_file(clean_env, monkeypatch):
    _state(clean_env)
    (clean_env / "docs").mkdir()
    monkeypatch.chdir(clean_env / "docs")
    target = discover(None, None, None)
    assert (target.endpoint_url, target.stack_name, target.region) == ("http://127.0.0.1:4999", "loan-notify-local",
                                                                       "us-east-1")
    assert target.found_by.startswith("make local")


def test_the_flag_then_the_environment_win_over_make_local(clean_env, monkeypatch):
    _state(clean_env)
    monkeypatch.setenv("LOAN_NOTIFY_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert discover(None, None, None).endpoint_url == "http://127.0.0.1:5000"
    assert discover(None, None, "http://127.0.0.1:6000").endpoint_url == "http://127.0.0.1:6000"


def test_a_stopped_server_or_another_stack_name_means_aws(clean_env):
    _state(clean_env, pid=2**22 + 12345)  # no such process
    assert discover(None, None, None).endpoint_url is None
    _state(clean_env)
    target = discover("loan-notify-prod", "eu-west-1", None)
    assert (target.endpoint_url, target.stack_name, target.found_by) == (None, "loan-notify-prod", "AWS")


def test_durations():
    assert parse_duration("30m").total_seconds() == 1800
    assert parse_duration("1h30m").total_seconds() == 5400
    with pytest.raises(OpsError):
        parse_duration("soon")
