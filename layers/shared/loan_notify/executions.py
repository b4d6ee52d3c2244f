"""Starting notice executions: Step Functions StartExecution, idempotent by execution name."""

from __future__ import annotations

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
