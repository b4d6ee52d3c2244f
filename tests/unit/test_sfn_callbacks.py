"""Task callbacks on a closed task answer as AWS answers them (localcloud.patches 41): TaskTimedOut ("Provided task
does not exist anymore") for a token whose wait timed out and for one answered already, InvalidToken for one no
execution knows, whichever executions have finished meanwhile."""

from __future__ import annotations

import pytest

from localcloud import patches


@pytest.fixture
def pool(cloud):  # the session's local cloud has the patches applied
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackPoolManager

    return CallbackPoolManager(activity_store={})


def _success(token):
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess

    return CallbackOutcomeSuccess(callback_id=token, output="{}")


def test_a_callback_after_the_wait_timed_out_is_task_timed_out(pool):
    from moto.stepfunctions.parser.api import TaskTimedOut

    endpoint = pool.add("token-late")
    assert endpoint.wait(timeout=0.01) is None  # the state's deadline passed with no answer
    with pytest.raises(TaskTimedOut):
        pool.notify("token-late", _success("token-late"))
    assert endpoint.get_outcome() is None  # nothing reached the execution


def test_a_second_answer_is_task_timed_out_and_the_first_stands(pool):
    from moto.stepfunctions.parser.api import TaskTimedOut

    endpoint = pool.add("token-once")
    first = _success("token-once")
    assert pool.notify("token-once", first) is True
    with pytest.raises(TaskTimedOut):
        pool.notify("token-once", _success("token-once"))
    assert endpoint.wait(timeout=0.01) is first


def test_moto_alone_accepted_both(pool, monkeypatch):
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackPoolManager

    monkeypatch.setattr(CallbackEndpoint, "wait", patches._originals[(CallbackEndpoint, "wait")])
    monkeypatch.setattr(CallbackPoolManager, "notify", patches._originals[(CallbackPoolManager, "notify")])
    pool.add("token-late").wait(timeout=0.01)
    assert pool.notify("token-late", _success("token-late")) is True  # what the patch corrects
    pool.add("token-once")
    assert pool.notify("token-once", _success("token-once")) is True
    assert pool.notify("token-once", _success("token-once")) is True


def test_a_failure_for_an_unknown_token_is_invalid_token_with_finished_executions_around(cloud):
    sfn = cloud.client("stepfunctions")
    machine = cloud.outputs["NotifyStateMachineArn"]
    # a finished execution is about (this suite's flows leave others): its worker has no environment any more
    cloud.table("BorrowersTableName").put_item(Item={"borrower_id": "B-callbacks", "name": "Cal", "locale": "en-US",
                                                     "phone": "+8613800138777", "email": "cal@example.com"})
    cloud.table("LoansTableName").put_item(Item={
        "loan_id": "L-callbacks", "borrower_id": "B-callbacks", "status": "WITHDRAWN", "version": 1,
        "updated_at": "2026-11-29T08:00:00Z"})
    cloud.wait_idle()
    assert any(e["status"] != "RUNNING" for e in sfn.list_executions(stateMachineArn=machine)["executions"])
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.send_task_failure(taskToken="no-such-token", error="E", cause="c")
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.send_task_success(taskToken="no-such-token", output="{}")
