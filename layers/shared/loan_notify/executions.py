"""Starting notice executions: Step Functions StartExecution, idempotent by execution name."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


class StepFunctionsStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def __call__(self, name: str, payload: str) -> bool:
        """True if this call started the execution, False if one of that name already exists."""
        try:
            self._client.start_execution(stateMachineArn=self._arn, name=name, input=payload)
            return True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise

    def status(self, name: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; None if no execution of that name exists."""
        arn = self._arn.replace(":stateMachine:", ":execution:") + f":{name}"
        try:
            return str(self._client.describe_execution(executionArn=arn)["status"])
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise


_GONE = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


class TaskCallbacks:
    """Report to an execution waiting on `.waitForTaskToken`; False when it no longer waits."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def success(self, token: str, output: dict[str, Any]) -> bool:
        try:
            self._client.send_task_success(taskToken=token, output=json.dumps(output))
            return True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _GONE:
                return False
            raise

    def failure(self, token: str, error: str, cause: str) -> bool:
        try:
            self._client.send_task_failure(taskToken=token, error=error, cause=cause)
            return True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in _GONE:
                return False
            raise
