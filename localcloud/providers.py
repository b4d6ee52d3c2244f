"""Provider simulator: knobs that make a channel's provider fail, throttle or stay silent, per region.

The faults are raised inside moto's own SNS and SES backends (see `localcloud.patches`), so the handlers see
exactly what botocore would hand them from the real service: an HTTP 500 `InternalError` from SNS, a 429
`TooManyRequestsException` from SES v2, and so on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from moto.core.exceptions import ServiceException

# service -> (error code for "down", error code for "throttled"), as the real service names them
_CODES = {
    "sns": ("InternalError", "Throttled"),
    "ses": ("InternalServiceErrorException", "TooManyRequestsException"),
}


class ProviderDown(ServiceException):
    code = "InternalError"
    message = "The provider is unavailable (local simulator)"


class ProviderThrottled(ServiceException):
    code = "Throttling"
    message = "Rate exceeded (local simulator)"


@dataclass
class _Fault:
    mode: str  # "down" | "throttle"
    remaining: int | None  # None: until cleared


class ProviderSimulator:
    def __init__(self) -> None:
        self._faults: dict[tuple[str, str], _Fault] = {}
        self._lock = threading.Lock()
        self.calls: dict[tuple[str, str], int] = {}

    def down(self, service: str, region: str, times: int | None = None) -> None:
        """Every call to `service` in `region` fails with a 5xx (for `times` calls, or until `reset`)."""
        self._set(service, region, _Fault("down", times))

    def throttle(self, service: str, region: str, times: int | None = 1) -> None:
        self._set(service, region, _Fault("throttle", times))

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()

    def _set(self, service: str, region: str, fault: _Fault) -> None:
        if service not in _CODES:
            raise ValueError(f"unknown provider service {service!r}; one of {sorted(_CODES)}")
        with self._lock:
            self._faults[(service, region)] = fault

    def check(self, service: str, region: str) -> None:
        """Called by the patched backends before they do the real work."""
        with self._lock:
            self.calls[(service, region)] = self.calls.get((service, region), 0) + 1
            fault = self._faults.get((service, region))
            if fault is None:
                return
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[(service, region)]
        down_code, throttle_code = _CODES[service]
        if fault.mode == "down":
            raise ProviderDown(down_code, f"{service} in {region} is unavailable (local simulator)")
        raise ProviderThrottled(throttle_code, f"{service} in {region}: rate exceeded (local simulator)")
