"""Patch 36: the Step Functions interpreter's deep copies of JSON data are made by a plain walk, and equal.

The copy is compared with Python's deepcopy for JSON values and for values that are not JSON (which take Python's
deepcopy), and checked to share nothing mutable with its original. The flow tests run every execution through it.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from datetime import datetime, timezone
from decimal import Decimal

from localcloud import patches

JSON = {"notice": {"id": "L-1", "channels": ["SMS", "EMAIL"], "attempt": 2, "rate": 0.5, "final": False,
                   "reason": None, "nested": [[{"a": 1}], []]}, "empty": {}, "text": "Zoë 张"}


def test_json_values_are_copied_equal_and_apart():
    copier = patches._JsonCopy(copy)
    twin = copier.deepcopy(JSON)
    assert twin == copy.deepcopy(JSON) == JSON
    twin["notice"]["channels"].append("PUSH")
    twin["notice"]["nested"][0][0]["a"] = 2
    assert JSON["notice"]["channels"] == ["SMS", "EMAIL"] and JSON["notice"]["nested"][0][0] == {"a": 1}


def test_values_that_are_not_json_take_pythons_deepcopy():
    copier = patches._JsonCopy(copy)
    cycle: list = []
    cycle.append(cycle)
    moment = datetime(2026, 11, 30, tzinfo=timezone.utc)
    for value in ({"at": moment}, [Decimal("1.5")], OrderedDict(a=[1]), {"t": (1, 2)}, cycle):
        twin = copier.deepcopy(value)
        assert type(twin) is type(value) and repr(twin) == repr(copy.deepcopy(value))
        assert twin is not value
    assert copier.deepcopy({"a": [1]}, {}) == {"a": [1]}  # with a memo: Python's deepcopy, as moto called it
    assert copier.copy is copy.copy  # every other name is the copy module's


def test_the_interpreter_modules_see_the_json_copy(cloud):
    import importlib

    for name in patches._SFN_COPYING_MODULES:
        assert isinstance(importlib.import_module(name).copy, patches._JsonCopy), name
