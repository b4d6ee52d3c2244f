"""Patches 28, 29 and 39: what the local cloud no longer recomputes on every call is still what it was.

- the User-Agent header botocore builds for a request is the same string as before, and changes when what it is
  built from changes (a request context's features);
- moto's request ids keep their length and alphabet, drawn from moto's own generator;
- collection runs less often while the local cloud runs (the thresholds found are put back by `undo`);
- a name moto converts from camel case is converted as moto's function converts it.
"""

from __future__ import annotations

import gc
import string

from botocore.context import start_as_current_context
from botocore.useragent import UserAgentString, register_feature_id
from moto.moto_api._internal import mock_random
from moto.moto_api._internal.moto_random import MotoRandom

from localcloud import patches


def test_the_user_agent_is_the_string_botocore_builds_and_follows_the_request_features(cloud):
    creator = cloud.client("dynamodb")._user_agent_creator
    built_by_botocore = patches._originals[(UserAgentString, "to_string")]
    plain = creator.to_string()
    assert plain == built_by_botocore(creator) and creator.to_string() is plain
    with start_as_current_context():
        register_feature_id("WAITER")
        with_feature = creator.to_string()
        assert with_feature == built_by_botocore(creator) and with_feature != plain
    assert creator.to_string() == plain
    other = creator.with_client_config(None)  # a copy with another client config is built on its own
    assert other.to_string() == built_by_botocore(other)


def test_request_ids_keep_their_length_and_alphabet(cloud):
    ids = [mock_random.get_random_string(length=52) for _ in range(200)]
    assert all(len(i) == 52 and set(i) <= set(string.ascii_letters + string.digits) for i in ids)
    assert len(set(ids)) == 200
    assert not set(mock_random.get_random_string(length=400, include_digits=False)) & set(string.digits)
    assert mock_random.get_random_string(length=30, lower_case=True).islower()
    # seeded, the same ids again (a private generator: the test run's other threads draw from moto's shared one)
    assert MotoRandom(7).get_random_string(length=52) == MotoRandom(7).get_random_string(length=52)
    assert MotoRandom(7).get_random_string(length=52) != MotoRandom(8).get_random_string(length=52)


def test_collection_runs_less_often_while_the_local_cloud_runs(cloud):
    assert gc.get_threshold() == patches._GC_THRESHOLD


def test_kept_name_conversions_are_motos(cloud):
    """Patch 39: every moto module converting names sees the kept conversion, and it converts each string (every
    operation of the services the pipeline calls, every SQS queue attribute, odd ones) as moto's function does."""
    import importlib

    import botocore.session
    from moto.core import utils as core_utils
    from moto.sqs.models import Queue

    original = patches._originals[(core_utils, "camelcase_to_underscores")]
    kept = core_utils.camelcase_to_underscores
    assert kept is not original
    for module in patches._CAMELCASE_USERS:
        assert importlib.import_module(module).camelcase_to_underscores is kept
    session = botocore.session.get_session()
    names = [operation for service in ("sqs", "sns", "stepfunctions", "dynamodb", "lambda")
             for operation in session.get_service_model(service).operation_names]
    names += [*Queue.BASE_ATTRIBUTES, *Queue.FIFO_ATTRIBUTES, *Queue.KMS_ATTRIBUTES]
    names += ["", "A", "ABCTest", "already_snake", "With Space", "getHTTPResponseCode", "X-Amz-Target", "ÉtéÀ"]
    for _ in range(2):  # the second round answers from what was kept
        for name in names:
            assert kept(name) == original(name), name
    assert kept(None) is None  # not hashable is not the point: None goes through moto's function, as before
    assert kept(["not", "hashable"]) == original(["not", "hashable"])
