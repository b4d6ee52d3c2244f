"""Every moto workaround in one place (moto is pinned exactly in requirements-dev.txt).

Each patch names the moto internal it replaces; `check_internals()` fails loudly, naming the internal,
when a moto upgrade moves one of them (tests/unit/test_moto_internals.py runs it on every `make test`).

What is patched, and why:
1. Lambda invocation (`LambdaFunction._invoke_lambda`): every invoke path (Invoke API, Step Functions
   tasks) runs the real handler in process instead of in Docker.
2. DynamoDB stream capture (`StreamShard.add`): moto reuses sequence numbers, is not thread-safe, and
   delivers synchronously ignoring the mapping's settings. We assign unique increasing sequence numbers
   under a lock, keep the records for GetRecords, and hand them to `localcloud.streams`, which honours
   FilterCriteria, BatchSize, ReportBatchItemFailures, retries, bisection and the OnFailure destination.
3. Step Functions backends: state machines created through CloudFormation land in
   `stepfunctions_backends` while the executing API serves `stepfunctions_parser_backends`.
4. Step Functions task clients (`boto_client_for`): cached per (region, service) instead of built per task,
   and JSONPath expressions (`json_path.parse`, and `result_path.parse` for a state's ResultPath): cached per path
   instead of building a yacc parser each time.
5. ASL parsing (`AmazonStateLanguageParser.parse`): moto re-parses the definition with ANTLR and rebuilds
   its evaluation components for every execution (about 30 ms each). Both are cached per definition.
   The components only change while they are built (`from_state_props`); execution state lives in each
   execution's Environment. Map and Parallel states keep worker pools on their components, so a definition
   that has one gets fresh components per execution (built from the cached parse tree).
6. Providers (`SNSBackend.publish` to a phone number, `SESBackend.send_email`, `SESBackend.send_raw_email`):
   each call first asks the provider simulator (`localcloud.providers`) whether this service and region is
   down or throttled, and raises the error the real service would; after a successful send the simulator
   emits the delivery receipts the real service would (moto publishes none). After the provider accepted,
   the simulator may "lose the answer" (a ReadTimeoutError to the caller). Step Functions task callbacks
   (`StepFunctionsParserBackend.send_task_success/failure`) ask it too, so a callback can be throttled.
7. DynamoDB update expressions (`ActionCountValidator.traverse`, `OverlappingPathsValidator.traverse`): moto
   re-runs these whole-expression checks below every node of the expression tree (quadratic; most of each
   UpdateItem's time here). Checking once from the root is the same check: if the whole expression has at
   most one clause of each kind and no overlapping paths, neither has any part of it. And moto lists a
   response class's methods with `inspect.getmembers` on every request (`method_names_from_class`): cached
   per class.
8. Atomic conditional writes (`DynamoDBBackend.update_item/put_item/delete_item/transact_write_items`): moto
   reads the item, checks the condition and writes it back with no lock, so two threads can both pass a
   condition (96 concurrent pacer takes got 21 tokens of 20). One lock around writes makes every conditional
   write here as atomic as DynamoDB's; reads take it too (a query iterating an item a write is changing raised
   "dictionary changed size during iteration"), and so does each whole DynamoDB request (`DynamoHandler.call_action`:
   the handler renders the live item after the backend returns). SQS sends, receives, deletes and visibility changes
   (`SQSBackend.*`) share one lock too: moto's queue is a plain list, and the outbox pollers receive while
   executions send.
9. CloudFormation gaps: `localcloud.cfn_models` adds AWS::SNS::Subscription, AWS::SNS::TopicPolicy,
   AWS::SES::ConfigurationSet, AWS::SecretsManager::Secret and AWS::CloudWatch::Alarm to moto's model map
   (`get_model_map` cache cleared so it sees them).
10. Time compression: Retry intervals (`retrier_decl.time`) and Wait states (`WaitFunction._wait_interval`)
   sleep `seconds * time_scale` (0 skips them, 1 is faithful). Task timeouts (`Timeout._eval_body`, e.g. a
   `.waitForTaskToken` deadline) are scaled too when time_scale > 0; at 0 they stay real, since a zero
   deadline would expire before any receipt could arrive. SQS visibility timeouts (`Message.change_visibility`)
   and the pacer's clock (`loan_notify.clock.wall`) run on the time scale too, so provider rates hold per
   simulated second.
11. StartExecution names (`StepFunctionsParserBackend.start_execution`): the executing backend accepts any
   name ("TODO: validate name format"); AWS refuses one over 80 characters or with a forbidden character.
   moto's own check (`StepFunctionBackend._validate_name`, used for state machine names) is applied first.
   The provider simulator may throttle it (service "states"), as Step Functions answers ThrottlingException
   when StartExecution's token bucket is empty.
12. RedriveExecution (`StepFunctionResponse.redrive_execution`, `StepFunctionsParserBackend.redrive_execution`,
   `Execution.to_history_output`): moto has no redrive. Modelled on AWS's semantics: only a FAILED, TIMED_OUT
   or ABORTED execution can be redriven (otherwise ExecutionNotRedrivable); it keeps its ARN, name and history,
   an `ExecutionRedriven` event is appended, and it continues from the unsuccessful state (the last state entered
   and never exited) with the input that state had; the successful states before it are not run again.
13. StopExecution (`Execution.stop`): moto marks the program stopped but a task waiting for its callback
   (`.waitForTaskToken`) sleeps on until its timeout, so the execution stays RUNNING for days. AWS aborts it at
   once: such an execution is marked ABORTED (with its ExecutionAborted event) at once, and the sleeping worker is
   detached from it, so its late end changes nothing (a redrive gives the execution a new worker).
14. S3 buckets through CloudFormation (`FakeBucket.create_from_cloudformation_json`): moto applies only the
   encryption and tags, so the evidence archive would have no versioning, no public access block and no Object
   Lock. The wrapper applies VersioningConfiguration, PublicAccessBlockConfiguration, ObjectLockEnabled and
   ObjectLockConfiguration's default retention with moto's own backend calls (moto enforces Object Lock: a locked
   version cannot be deleted before its retain-until date, compliance mode admits no bypass).
15. CloudFormation list parameters (`ResourceMap.load_parameters`): moto splits a CommaDelimitedList (or List<...>)
   parameter's value when it is passed, but leaves its Default a plain string; AWS splits both.
16. End User Messaging SMS (no moto model at all): `localcloud.smsvoice` answers pinpoint-sms-voice-v2 requests
   from a botocore `before-send` handler for that service (`botocore.handlers.BUILTIN_HANDLERS`, and the boto3
   default session if one exists already). A service-specific handler runs before moto's catch-all one, in
   process and in server mode alike; the provider simulator's faults, rate and receipts apply as for SNS and SES.
   In process, a client whose before-send handler for the service is that one is answered a step earlier, by the
   fast lane at before-call (`localcloud.fastlane`), from the same model and without signing the request.
17. DynamoDB responses (`ActionResult.execute_result`): moto 5 serializes every result through a serializer driven by
   the botocore model, walking each attribute value's shape (a 5 KB ledger item took 30 ms to read, 2 ms of it
   the read). DynamoDB's results are already its wire format (`{"S": ...}` values), so for that service the
   result is written with `json.dumps`; a result json cannot write as is (bytes, Decimal, datetime) and every
   error still go through moto's serializer. tests/unit/test_dynamodb_patches.py runs the same requests with and
   without patches 17-22, 24 and 25 and compares the answers.
18. Backend lookups (`BackendDict.__getitem__`): moto takes its process-wide `backend_lock` on every request just
   to see that the account's backend exists; with dozens of threads in flight they queue on it. The lock is only
   needed to create one, so a lookup that finds it returns at once.
19. DynamoDB values as plain JSON (`DynamoType.to_regular_json`): moto deep-copies the value at every level of
   nesting before rebuilding it, so a list of maps of maps is copied once per level (most of an UpdateItem's time
   on a ledger item, whose chain is such a list). The value is rebuilt once, copying only the leaves.
20. DynamoDB item sizes (`DynamoType.size`): moto measures a map's values by wrapping each in a new DynamoType,
   which rebuilds the value's whole subtree, at every level; and the 400 KB check measures the whole item again
   for every attribute an update sets. The size is the same sum, taken without rebuilding anything.
21. UpdateItem's copies (`DynamoHandler.update_item`, `DynamoDBBackend.update_item`): moto's handler deep-copies the
   item and renders it as JSON before every update, to answer ReturnValues ALL_OLD, UPDATED_OLD or UPDATED_NEW;
   the backend deep-copies it again as the stream record's old image. For an update asking for neither (NONE, the
   default, or ALL_NEW) the handler's look at the old item finds nothing, and on a table without a stream the old
   image is the item itself (nothing reads it). Every other call copies as moto does.
22. Update expression trees (`moto.dynamodb.parsing.validators.deepcopy`): each validation starts from a deep copy
   of the parsed expression, made by Python's generic deepcopy (a third of a 14-clause UpdateItem). The tree's
   nodes hold only their type name, parent and children, so they are copied node by node; values inside (a
   DynamoType) are still deep-copied, and every other deepcopy in that module is Python's.
23. SQS visibility checks (`Queue.messages`, `Message.visible`, `Message.delayed`,
   `SQSBackend.is_message_valid_based_on_retention_period`): moto reads the clock through a datetime subtraction
   twice per message on every receive, and builds the queue's whole attribute map to learn its retention period
   for each message it hands out. An outbox holds a burst's notices put back until their send slot, and its pollers
   look every 50 ms, so most of those reads find nothing (the burst's CPU halved without them). The same comparisons are
   made against one `time.time()` reading (the clock moto's reads come from), and the retention period is read
   from the queue itself. tests/unit/test_sqs_patches.py compares what receives return with and without them.
24. Update expression traversals (`DepthFirstTraverser.traverse`): each of an UpdateItem's eight passes over the
   expression tree rebuilds its processor's type map (a dict of bound methods, then a tuple of its keys) at every
   node, to ask whether the node is one it processes, and asks it with `isinstance` against abstract base classes
   (their slow path), then again in `process` to pick the handler. The map of a processor class never changes, so
   each node class's answer (and the handler `process` would pick: the first type it is an instance of) is kept per
   processor class, and moto's default child hook, which does nothing, is not called; a pass walks the same nodes
   in the same order and processes the same ones with the same handlers.
25. Parsed update expressions (`UpdateExpressionParser.make`): moto tokenizes and parses an UpdateItem's expression
   twice per request (the handler, then the backend), and the ledger sends the same few expressions all day. The
   tree is cached per expression string. Nothing changes a parsed tree: the handler only reads it and each
   validation works on its own copy (patch 22). An expression that does not parse raises every time, as before.
26. DynamoDB without the HTTP round trip (`localcloud.fastlane`, a botocore `before-call` handler in every session):
   a DynamoDB request, once botocore has validated and serialized it, goes to moto's `DynamoHandler` directly, and
   its answer to botocore's own parser, instead of being signed, matched against every service's URL patterns,
   rebuilt as a werkzeug request and parsed again (`make bench`: 6.9 changes/s before, 9.8 with it); an answer
   without a binary value keeps its attribute values as they came instead of rebuilding each one. Only
   with moto's in-process mock on; a request with a binary value takes the usual path. tests/unit/test_fastlane.py
   compares the answers both ways.
27. Senders first (`localcloud.lambdas.Runtime.gate`, called by the same before-call handler): in Lambda each
   invocation has a CPU of its own, here all share one interpreter, and the outbox consumers, which send on the
   pacer's clock, were a few threads among hundreds while a burst was routed and prepared: they missed the moments
   they had booked. While an outbox consumer runs (and from just before the moment it waits for), every other
   thread waits at its next AWS call, at most 2 s at a time. `LocalCloud(senders_first=False)` turns it off.
28. Garbage collection (`gc.set_threshold`): one process holds every function, moto's backends and botocore's
   models (hundreds of thousands of tracked objects once deployed), and Python's default threshold runs a
   young-generation collection every 700 allocations and an older one every ten of those, each walking more of
   that heap. While the local cloud runs, a collection runs every 20,000 allocations
   (the older generations at the default ratios); `stop()` restores the thresholds it found. Garbage is still
   collected, only less often.
29. Per-call constants (`UserAgentString.to_string`, `MotoRandom.get_random_string`): botocore rebuilds each request's
   User-Agent header from about forty sanitized components, and moto draws its 52-character request id one
   `random.choice` at a time: together a large part of a small DynamoDB read's time. The header is kept per client and
   request features (what it is built from), and the id is drawn with one `random.choices` call on moto's own (seedable)
   generator.
30. Condition expressions (`ConditionExpressionParser._lex_condition_expression`): moto splits a condition into
   tokens by trying six regular expressions at every position, on every conditional write, and the system sends the
   same few conditions all day. The tokens of an expression string are kept (a fresh token list is built from them
   for every parse, since later steps build on it); an expression that does not lex raises every time, as before.
31. Update expression checks that depend on nothing but the expression (`UpdateExpressionValidator.validate`): the
   clause counts, overlapping paths and key-attribute checks get the same answer for the same parsed expression
   (patch 25 hands the same tree for the same text), attribute names and table keys. Once a combination passed them,
   its later validations run the other seven passes only; one that failed is checked (and fails) every time.
32. Metrics per invocation (`aws_lambda_powertools.metrics.Metrics._metrics`, `_dimensions`, `_metadata`):
   powertools keeps the metrics a handler adds in class-level dicts shared by every
   `Metrics()` of the process, which in Lambda is one instance's. Here every function runs in one process, so an
   invocation flushing its metrics also wrote (and cleared) the ones another function's invocation had added
   meanwhile: the router's RejectedStatusChange turned up in SendNotice's log. Each dict is now kept per thread (an
   invocation runs in one thread), so each invocation flushes what it added, as in its own Lambda instance. Default
   dimensions (set once, at import) stay shared, and each thread's dimensions start from them.
33. Parsed condition expressions (`ConditionExpressionParser.parse`): moto parses an UpdateItem's condition twice per
   request (the handler, to list the names and values it uses, then the backend) and every other conditional write's
   once, building the same tree for the same few conditions all day. The tree is kept per expression string,
   attribute names and the names (not the values) of the attribute values: it is parsed once with each value standing
   in as its name, and each request's operator objects are built from the kept tree with that request's values, as
   moto builds them. A condition that does not parse is parsed (and raises) every time, as before.
34. Requests to moto's in-process mock that take the usual path (Lambda and SNS but Invoke and Publish, SES, End User
   Messaging SMS: everything the fast lane leaves). botocore signs each with SigV4 (hashing the body and the canonical
   request, then five HMACs), and moto, which checks no signature, matches its URL against every service's patterns
   (over a hundred regular expressions) before it dispatches it. Here a request to an AWS endpoint, while the mock is
   on, carries the Authorization header SigV4 would write (the same access key, date, region and service in its
   credential scope, the headers it would sign) with a signature of zeros, which is all moto and the local End User
   Messaging model read from it (`SigV4Auth.add_auth`, only for SigV4 itself, not S3's or presigned URLs; signed in
   full when moto's IAM checks are on or it passes requests through to AWS); and the handler a URL matched is kept per
   URL (`BotocoreStubber.process_request`), so the next request to it is dispatched at once, through moto's own
   request normalization and handler, as before (moto's passthrough and whitelist settings are checked on every
   request, as moto checks them).
35. DynamoDB attribute values in botocore (`ParamValidator._validate_structure`,
   `JSONSerializer._serialize_type_structure`): botocore validates and serializes every attribute value of a request
   member by member against the model, a ledger item's hundreds of them on each write. An attribute value made only
   of strings, numbers (as strings), booleans, nulls, string sets, maps and lists of such values passes botocore's
   validation (the model puts no constraint on any of them) and serializes to itself (no member is renamed or
   re-encoded), so it is taken as it is; anything else (binary values, other Python types, unknown members, None) is
   validated and serialized by botocore, member by member, as before. The request's JSON is the same text either way.
36. Copies in the Step Functions interpreter (`copy` as seven of moto's `stepfunctions.parser` modules see it): moto
   deep-copies a state's data each time a state reads its input, writes its result, evaluates a path or a payload
   template, opens a frame or records an event, about twenty times per state, with Python's generic `deepcopy`. That
   data is JSON (dicts, lists, strings, numbers, booleans, None), which is copied here by a plain walk over those types;
   a value holding anything else (a datetime in an event's details, moto's own objects) is deep-copied by Python's
   `deepcopy`, as before. Equal values either way; the JSON walk does not keep moto's sharing of a sub-value that
   appears twice in one value, which JSON (what the data came from and goes to) cannot express.
37. SQS, Step Functions, Lambda's Invoke and SNS's Publish without the HTTP round trip (`localcloud.fastlane`, patch
   26's handler): the outbox queue's SendMessage, StartExecution, the task callbacks, a state machine task's Invoke
   and a receipt's Publish go to moto's own response class set up as `setup_class` sets it up (SQS's and SNS's
   parameters parsed by moto's own parser, Step Functions' and Lambda's read from the same query string, path and
   body), instead of through a werkzeug request rebuilt from the signed request (about 0.65 ms per call). An answer
   botocore's retry handler would retry (a throttled callback or StartExecution) is retried through the same handler
   and with the same sleeps as botocore's endpoint would. A request with a binary SQS message attribute, a Lambda
   payload that is not text, and every other Lambda and SNS operation take the usual path. tests/unit/test_fastlane.py
   compares the answers both ways.
38. Item sizes (`LimitedSizeDict.__setitem__`, `Item.__init__`, `UpdateExpressionExecutor.execute` and the SET,
   REMOVE, ADD and DELETE executors): moto checks the 400 KB limit by summing the whole item's size (every nested
   value) for every attribute it sets, so building an item is quadratic in its attributes and each top-level SET of
   an update sums the item again. While an item is built, or one update's actions run, the item's exact size is
   carried from one write to the next (the old value's size out, the new one's in); any action that changes a value
   in place or removes one (a nested SET, REMOVE, ADD, DELETE) forgets it, so the next top-level SET sums the item
   again as moto does. The same writes are refused, at the same point (tests/unit/test_dynamodb_patches.py).
39. Name conversions (`camelcase_to_underscores` as moto's core, SQS and SNS modules see it): moto converts every
   request's action name to a method name, and SQS every queue attribute's name on every SendMessage, a character at a
   time. The conversion is a pure function of its string, so each string's is kept (4,096 of them); anything that is
   not a string is converted by moto's function as before.
40. Projections (`Item.project`): moto converted the whole item to plain JSON for each path of a ProjectionExpression
   and then looked the path up in it, so a read of two attributes of a notice cost as much as reading its whole chain
   and every attempt (and the time of a read that is refused for its owner grew with the size of an item the caller
   cannot see). Only the top-level attribute a path starts from (`name`, or the list `name` of `name[3]`) is converted
   now, with moto's own conversion, before the same lookup and merge: the same item is returned
   (tests/unit/test_dynamodb_patches.py compares the two over nested, listed, missing and repeated paths).
41. Task callbacks on a closed task (`CallbackEndpoint.wait`, `CallbackPoolManager.notify`,
   `StepFunctionsParserBackend.send_task_failure`): moto accepted SendTaskSuccess and SendTaskFailure on a token
   whose `.waitForTaskToken` had timed out, or that was answered already, and reported success; AWS answers
   TaskTimedOut ("Provided task does not exist anymore") to both. A receipt arriving after its confirmation
   deadline was then told it had answered the execution, so it did not look for the review case that execution had
   opened. A wait that ends
   without an answer now marks its endpoint timed out, and a callback on a timed-out or answered endpoint raises
   what AWS answers. moto's SendTaskSuccess and SendTaskFailure also looked in executions whose worker has no
   environment (a finished one; a running one between its worker's states): an AttributeError instead of an answer.
   They look only where one is left, and SendTaskFailure's `cause` reaches the execution (moto's response handler
   passed the error alone). moto also timed such a task out twice: the state's timer (in the thread that
   runs it) and the callback wait's (started a moment later), unsynchronised with the callbacks, so a receipt could
   be told it answered a task whose state had just timed out. The callback wait now decides, under one lock with
   the callbacks (the first of the two is the outcome), and the state's timer waits 10% and 2 s longer, as a
   backstop for a task that never reached its wait; if the backstop fires first, it times the execution's
   unanswered tokens out under the same lock (this state machine waits on one task at a time)
   (tests/unit/test_sfn_callbacks.py).
42. Operation models of a shared service model (`moto.core.model.ServiceModel.operation_model`): moto caches one
   service model per service for every thread, and its `operation_model` wraps botocore's under the same key of
   that model's instance cache. A thread asking between the two got botocore's operation model, with no
   `http_trait`, and moto's REST router failed with AttributeError: the borrower API's SES email answered 500 in
   one full test run of a few. moto's operation models are kept under a key of their own
   (tests/unit/test_request_patches.py).
43. DynamoDB request copies (`boto3.dynamodb.transform.copy_dynamodb_params`): a boto3 DynamoDB resource deep-copies
   every request's parameters with the generic `deepcopy` before transforming them. Dicts and lists are now copied
   by a plain walk, values `deepcopy` keeps as they are are kept, anything else still goes to `deepcopy`
   (tests/unit/test_request_patches.py compares the copies).
"""

from __future__ import annotations

import functools
import importlib
import re
import threading
import time as _real_time
from collections.abc import Callable, MutableMapping
from typing import Any, Protocol

MOTO_VERSION = "5.2.5"

# (module, attribute) pairs this module depends on. Checked by check_internals().
# The Step Functions interpreter modules whose deep copies patch 36 makes as JSON.
_SFN_COPYING_MODULES = (
    "moto.stepfunctions.parser.asl.eval.states",
    "moto.stepfunctions.parser.asl.component.common.string.string_expression",
    "moto.stepfunctions.parser.asl.component.common.path.result_path",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
    "moto.stepfunctions.parser.asl.component.state.exec.execute_state",
    "moto.stepfunctions.parser.asl.eval.event.event_manager",
    "moto.stepfunctions.parser.asl.eval.environment",
)

# The moto modules that convert a request's names on every call (patch 39).
_CAMELCASE_USERS = ("moto.core.utils", "moto.core.responses", "moto.sqs.models", "moto.sns.models",
                    "moto.sns.responses")

INTERNALS = [
    ("moto.core.models", "botocore_stubber"),  # patch 26: the fast lane only while moto's in-process mock is on
    ("moto.dynamodb.responses", "DynamoHandler.call_action"),
    ("moto.iam.models", "get_account_id_from"),
    ("moto.utilities.utils", "get_partition"),
    ("botocore.endpoint", "convert_to_response_dict"),
    ("moto.sqs.responses", "SQSResponse.call_action"),  # patch 37: SQS, Step Functions, Invoke, Publish in the lane
    ("moto.awslambda.responses", "LambdaResponse.invoke"),
    ("moto.sns.responses", "SNSResponse.publish"),
    ("moto.core.botocore_stubber", "MockRawResponse"),
    ("moto.stepfunctions.responses", "StepFunctionResponse.call_action"),
    ("moto.core.responses", "BaseResponse.parse_parameters"),
    ("moto.core.responses", "_decode_dict"),
    ("moto.core.utils", "utcnow"),
    ("moto.iam.models", "mark_account_as_visited"),
    ("moto.core.config", "passthrough_url"),  # the fast lane leaves what moto's configuration passes through or refuses
    ("moto.core.config", "passthrough_service"),
    ("moto.core.config", "service_whitelisted"),
    ("moto.moto_api", "recorder"),
    ("botocore.parsers", "create_parser"),
    ("moto.awslambda.models", "LambdaFunction._invoke_lambda"),
    ("moto.dynamodb.models.table", "StreamShard.add"),
    ("moto.dynamodb.models.table", "StreamRecord"),
    ("moto.dynamodb.models.table", "Table.lambda_event_source_mappings"),
    ("moto.stepfunctions.models", "stepfunctions_backends"),
    ("moto.stepfunctions.parser.models", "stepfunctions_parser_backends"),
    ("moto.stepfunctions.parser.asl.utils.boto_client", "boto_client_for"),
    ("moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils", "boto_client_for"),
    ("moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
     "boto_client_for"),
    ("moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
     "boto_client_for"),
    ("moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
     "boto_client_for"),
    ("moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
     "boto_client_for"),
    ("moto.stepfunctions.parser.asl.component.common.retry.retrier_decl", "time"),
    ("moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function",
     "WaitFunction._wait_interval"),
    ("moto.stepfunctions.parser.backend.execution", "Execution.exec_status"),
    ("moto.stepfunctions.parser.backend.execution", "Execution.execution_arn"),
    ("moto.dynamodb.models", "DynamoDBBackend.update_item"),
    ("moto.dynamodb.models", "DynamoDBBackend.put_item"),
    ("moto.dynamodb.models", "DynamoDBBackend.delete_item"),
    ("moto.dynamodb.models", "DynamoDBBackend.transact_write_items"),
    ("moto.dynamodb.models", "DynamoDBBackend.get_item"),
    ("moto.dynamodb.models", "DynamoDBBackend.query"),
    ("moto.dynamodb.models", "DynamoDBBackend.scan"),
    ("moto.dynamodb.models", "DynamoDBBackend.batch_get_item"),
    ("moto.stepfunctions.parser.models", "StepFunctionsParserBackend.send_task_success"),
    ("moto.stepfunctions.responses", "StepFunctionResponse.send_task_failure"),
    ("moto.core.responses", "EmptyResult"),
    ("moto.stepfunctions.parser.asl.component.state.exec.execute_state", "ExecutionState._evaluate_with_timeout"),
    ("moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource", "ResourceCondition"),
    ("moto.stepfunctions.parser.asl.component.common.timeouts.timeout", "EvalTimeoutError"),
    ("moto.stepfunctions.parser.models", "StepFunctionsParserBackend.send_task_failure"),
    ("moto.stepfunctions.parser.models", "StepFunctionsParserBackend.send_task_success"),
    ("moto.stepfunctions.parser.asl.eval.callback.callback", "CallbackOutcomeSuccess"),
    ("moto.stepfunctions.parser.api", "ExecutionStatus"),
    ("moto.core.responses", "get_service_model"),
    ("moto.sqs.models", "Message.change_visibility"),
    ("moto.sqs.models", "SQSBackend.send_message"),
    ("moto.sqs.models", "SQSBackend.receive_message"),
    ("moto.sqs.models", "SQSBackend.delete_message"),
    ("moto.sqs.models", "SQSBackend.change_message_visibility"),
    ("moto.sqs.models", "Queue.lambda_event_source_mappings"),
    ("loan_notify.clock", "wall"),
    ("moto.sns.models", "SNSBackend.sms_messages"),
    ("moto.sns.models", "SNSBackend.publish"),
    ("moto.ses.models", "SESBackend.send_email"),
    ("moto.ses.models", "SESBackend.send_raw_email"),
    ("moto.ses.models", "SESBackend.sent_messages"),
    ("moto.stepfunctions.parser.asl.parse.asl_parser", "AmazonStateLanguageParser.parse"),
    ("moto.stepfunctions.parser.asl.utils.json_path", "parse"),
    ("moto.stepfunctions.parser.asl.component.common.path.result_path", "parse"),
    *((module, "copy") for module in _SFN_COPYING_MODULES),  # patch 36
    ("moto.stepfunctions.parser.asl.parse.preprocessor", "Preprocessor"),
    ("moto.stepfunctions.parser.asl.component.common.timeouts.timeout", "Timeout._eval_body"),
    ("moto.stepfunctions.parser.asl.component.common.timeouts.timeout", "Timeout._eval_seconds"),
    ("moto.stepfunctions.parser.asl.component.common.timeouts.timeout", "Timeout.is_default_value"),
    ("moto.dynamodb.parsing.validators", "ActionCountValidator.verify_action_counts"),
    ("moto.dynamodb.parsing.validators", "ActionCountValidator.traverse"),
    ("moto.dynamodb.parsing.validators", "ActionCountValidator._processing_map"),
    ("moto.dynamodb.parsing.validators", "OverlappingPathsValidator.traverse"),
    ("moto.dynamodb.parsing.validators", "OverlappingPathsValidator._processing_map"),
    ("moto.core.responses", "method_names_from_class"),
    ("moto.events.models", "EventPattern.load"),
    ("moto.core.botocore_stubber", "BotocoreStubber.process_request"),  # wrapped by localcloud.costs to count
    ("moto.cloudformation.parsing", "get_model_map"),
    ("moto.cloudformation.parsing", "NULL_MODELS"),
    ("moto.cloudformation.parsing", "get_model_list"),
    ("moto.core.common_models", "CloudFormationModel"),
    ("moto.sns.models", "SNSBackend.subscribe"),
    ("moto.sns.models", "SNSBackend.set_topic_attribute"),
    ("moto.ses.models", "SESBackend.create_configuration_set"),
    ("moto.secretsmanager.models", "SecretsManagerBackend.create_secret"),
    ("moto.stepfunctions.parser.models", "StepFunctionsParserBackend.start_execution"),
    ("moto.stepfunctions.models", "StepFunctionBackend._validate_name"),
    ("moto.stepfunctions.responses", "StepFunctionResponse"),
    ("moto.stepfunctions.parser.backend.execution", "Execution._get_start_execution_worker"),
    ("moto.stepfunctions.parser.backend.execution", "Execution.to_history_output"),
    ("moto.stepfunctions.parser.backend.execution", "BaseExecutionWorkerCommunication"),
    ("moto.stepfunctions.parser.backend.execution_worker", "ExecutionWorker._get_evaluation_environment"),
    ("moto.stepfunctions.parser.asl.eval.event.event_manager", "EventManager._history_event_list"),
    ("moto.stepfunctions.parser.asl.eval.event.event_manager", "EventManager._event_id_gen"),
    ("moto.stepfunctions.parser.asl.eval.event.event_manager", "EventIdGenerator._next_id"),
    ("moto.stepfunctions.parser.api", "ExecutionNotRedrivable"),
    ("moto.stepfunctions.parser.backend.execution", "Execution.stop"),
    ("moto.stepfunctions.parser.asl.eval.callback.callback", "CallbackPoolManager._pool"),
    ("moto.stepfunctions.parser.asl.eval.callback.callback", "CallbackEndpoint.get_outcome"),
    ("moto.stepfunctions.parser.asl.eval.callback.callback", "CallbackEndpoint.wait"),  # patch 41
    ("moto.stepfunctions.parser.asl.eval.callback.callback", "CallbackConsumerTimeout"),
    ("moto.stepfunctions.parser.asl.eval.callback.callback", "CallbackPoolManager.notify"),
    ("moto.stepfunctions.parser.asl.eval.callback.callback", "CallbackOutcomeFailure"),
    ("moto.stepfunctions.parser.api", "TaskTimedOut"),
    ("moto.stepfunctions.parser.api", "TaskDoesNotExist"),
    ("moto.stepfunctions.exceptions", "InvalidToken"),
    ("moto.stepfunctions.parser.api", "SendTaskFailureOutput"),
    ("moto.stepfunctions.parser.models", "StepFunctionsParserBackend.send_task_failure"),
    ("moto.stepfunctions.parser.backend.execution_worker", "ExecutionWorker._execution_communication"),
    ("moto.cloudformation.models", "cloudformation_backends"),  # localcloud.cloud sets BorrowerApiUrl's value
    ("moto.cloudformation.models", "Stack.output_map"),
    ("moto.cloudformation.parsing", "Output.value"),
    ("moto.dynamodb.models.table", "StreamShard.id"),  # localcloud.streams names the shard in failure records
    ("moto.s3.models", "FakeBucket.create_from_cloudformation_json"),
    ("moto.cloudwatch.models", "CloudWatchBackend.put_metric_alarm"),
    ("moto.cloudwatch.models", "MetricDataQuery"),
    ("moto.cloudwatch.models", "MetricStat"),
    ("moto.s3.models", "S3Backend.put_bucket_versioning"),
    ("moto.s3.models", "S3Backend.put_public_access_block"),
    ("moto.s3.models", "S3Backend.put_object_lock_configuration"),
    ("botocore.handlers", "BUILTIN_HANDLERS"),
    ("moto.cloudformation.parsing", "ResourceMap.load_parameters"),
    ("moto.cloudformation.parsing", "ResourceMap.resolved_parameters"),
    ("moto.core.responses", "ActionResult.execute_result"),
    ("moto.core.base_backend", "BackendDict.__getitem__"),
    ("moto.core.base_backend", "BackendDict._instances"),
    ("moto.dynamodb.models.dynamo_type", "DynamoType.to_regular_json"),
    ("moto.dynamodb.models.dynamo_type", "DynamoType.size"),
    ("moto.dynamodb.models.dynamo_type", "LimitedSizeDict.__setitem__"),
    *((module, "camelcase_to_underscores") for module in _CAMELCASE_USERS),  # patch 39
    ("moto.dynamodb.models.dynamo_type", "Item.__init__"),
    ("moto.dynamodb.models.dynamo_type", "Item.project"),  # patch 40
    ("moto.dynamodb.models.dynamo_type", "deserializer"),
    ("moto.dynamodb.models.dynamo_type", "serializer"),
    ("moto.dynamodb.models.dynamo_type", "find_nested_key"),
    ("moto.dynamodb.models.dynamo_type", "merge_dicts"),
    ("moto.dynamodb.exceptions", "ItemSizeTooLarge"),
    ("moto.dynamodb.parsing.executors", "UpdateExpressionExecutor.execute"),
    ("moto.dynamodb.parsing.executors", "SetExecutor.execute"),
    ("moto.dynamodb.parsing.executors", "RemoveExecutor.execute"),
    ("moto.dynamodb.parsing.executors", "AddExecutor.execute"),
    ("moto.dynamodb.parsing.executors", "DeleteExecutor.execute"),
    ("moto.dynamodb.parsing.executors", "NodeExecutor.get_path_expression_nodes"),
    ("moto.dynamodb.responses", "DynamoHandler.update_item"),
    ("moto.dynamodb.responses", "DynamoHandler.call_action"),
    ("moto.dynamodb.models", "copy"),
    ("moto.dynamodb.models.table", "Table.stream_shard"),
    ("moto.dynamodb.parsing.validators", "deepcopy"),
    ("moto.dynamodb.parsing.ast_nodes", "Node"),
    ("moto.dynamodb.models.utilities", "bytesize"),
    ("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser.traverse"),
    ("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser.nodes_to_be_processed"),
    ("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser.pre_processing_of_child"),
    ("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser.process"),
    ("moto.dynamodb.parsing.ast_nodes", "DepthFirstTraverser._processing_map"),
    ("moto.dynamodb.parsing.expressions", "UpdateExpressionParser.make"),
    ("moto.sqs.models", "Queue.messages"),
    ("moto.sqs.models", "Message.visible"),
    ("moto.sqs.models", "Message.delayed"),
    ("moto.sqs.models", "SQSBackend.is_message_valid_based_on_retention_period"),
    ("botocore.useragent", "UserAgentString.to_string"),
    ("botocore.useragent", "UserAgentString._client_config"),
    ("botocore.useragent", "UserAgentString._client_features"),
    ("botocore.context", "get_context"),
    ("moto.moto_api._internal.moto_random", "MotoRandom.get_random_string"),
    ("aws_lambda_powertools.metrics", "Metrics._metrics"),
    ("aws_lambda_powertools.metrics", "Metrics._dimensions"),
    ("aws_lambda_powertools.metrics", "Metrics._metadata"),
    ("aws_lambda_powertools.metrics", "Metrics._default_dimensions"),  # read, not replaced
    ("moto.dynamodb.comparisons", "ConditionExpressionParser._lex_condition_expression"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser.Node"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser.Kind.LITERAL"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser.parse"),  # patch 33
    ("botocore.auth", "SigV4Auth._modify_request_before_signing"),  # patch 34
    ("botocore.validate", "ParamValidator._validate_structure"),  # patch 35
    ("botocore.serialize", "JSONSerializer._serialize_type_structure"),
    ("botocore.auth", "SigV4Auth._inject_signature_to_request"),
    ("botocore.utils", "get_current_datetime"),
    ("moto.core.botocore_stubber", "BotocoreStubber.process_request"),
    ("moto.core.botocore_stubber", "get_equivalent_url_in_aws_domain"),
    ("moto.core.botocore_stubber", "normalize_request"),
    ("moto.core.botocore_stubber", "backend_index"),
    ("moto.core.botocore_stubber", "passthrough_url"),
    ("moto.core.botocore_stubber", "passthrough_service"),
    ("moto.core.botocore_stubber", "service_whitelisted"),
    ("moto.core.botocore_stubber", "BackendDict"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser._make_operand"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser._make_op_condition"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser.Kind.EXPRESSION_ATTRIBUTE_VALUE"),
    ("moto.dynamodb.comparisons", "AttributeValue"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser.condition_expression"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser.expression_attribute_names"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser.expression_attribute_values"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser.expr_attr_names_found"),
    ("moto.dynamodb.comparisons", "ConditionExpressionParser.expr_attr_values_found"),
    ("moto.dynamodb.parsing.validators", "UpdateExpressionValidator.validate"),
    ("moto.dynamodb.parsing.validators", "Validator.__init__"),
    ("moto.dynamodb.parsing.validators", "UpdateHashRangeKeyValidator"),
    ("moto.dynamodb.models.table", "Table.table_key_attrs"),
]

_BOTO_CLIENT_MODULES = [m for m, attr in INTERNALS if attr == "boto_client_for"]


class MotoInternalMoved(RuntimeError):
    pass


def _resolve(module: str, dotted: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in dotted.split("."):
        if not hasattr(obj, part) and isinstance(obj, type):
            # an instance attribute: the class's source must still assign it
            import inspect

            if f"self.{part} =" not in inspect.getsource(obj) and f"self.{part}:" not in inspect.getsource(obj):
                raise AttributeError(f"{obj.__name__}.{part}")
            return None
        obj = getattr(obj, part)
    return obj


def check_internals() -> None:
    import moto

    problems = []
    if moto.__version__ != MOTO_VERSION:
        problems.append(f"moto {moto.__version__} is installed; localcloud.patches was written for {MOTO_VERSION}")
    for module, attr in INTERNALS:
        try:
            _resolve(module, attr)
        except (ImportError, AttributeError) as err:
            problems.append(f"{module}:{attr} moved or vanished ({type(err).__name__}: {err})")
    if problems:
        raise MotoInternalMoved("localcloud.patches needs updating:\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------- time compression
class _Clock:
    scale = 1.0


clock = _Clock()


class _ScaledTime:
    """Stands in for the `time` module inside moto's retrier: only sleep is scaled."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        if seconds > 0 and clock.scale > 0:
            _real_time.sleep(seconds * clock.scale)


def _check_from_root(self: Any, node: Any) -> Any:
    from moto.dynamodb.parsing.ast_nodes import UpdateExpression

    if isinstance(node, UpdateExpression):
        self._processing_map()[UpdateExpression](node)
    return node


def _traverse_once_typed(self: Any, node: Any) -> Any:
    """`DepthFirstTraverser.traverse` with the processed types taken once per pass (moto: once per node), and each
    node's class looked up in a table instead of asked of the abstract base classes (`isinstance` against an ABC is
    the slow path, paid twice per node per pass, and again in `process` for each of its types). A node is processed
    by the first of the processor's types it is an instance of, as `process` picks it; the child hook is only called
    for a processor that has one (moto's default does nothing)."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

    key = type(self)
    processed = _PROCESSED.get(key)
    if processed is None:
        processed = _PROCESSED[key] = {}
    types = self.nodes_to_be_processed()
    handlers = self._processing_map()
    before_child = None if key.pre_processing_of_child is DepthFirstTraverser.pre_processing_of_child \
        else self.pre_processing_of_child

    def kind(cls: type) -> tuple[bool, bool, Any]:
        from moto.dynamodb.parsing.ast_nodes import Node

        to_process = issubclass(cls, types)
        first = next((k for k in handlers if issubclass(cls, k)), None) if to_process else None
        known = processed[cls] = (issubclass(cls, Node), to_process, first)
        return known

    def walk(node: Any, child_id: int = -1) -> Any:
        known = processed.get(type(node)) or kind(type(node))
        if known[0]:
            parent_node = node.parent
            children = node.children
            if children is not None:
                if before_child is None:
                    for i, child_node in enumerate(children):
                        walk(child_node, i)
                else:
                    for i, child_node in enumerate(children):
                        before_child(node, i)
                        walk(child_node, i)
            if known[1]:
                node = handlers[known[2]](node) if known[2] is not None else self.process(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    return walk(node)


# For each traverser class: node class -> (is a Node, is one the traverser processes, the type it is processed as).
# A processor's types are fixed by its class (`_processing_map` returns the same keys, in the same order, on every
# call; only the bound methods are new).
_PROCESSED: dict[type, dict[type, tuple[bool, bool, Any]]] = {}


def _scaled_timeout(self: Any, env: Any) -> None:
    seconds = self._eval_seconds(env=env)
    if clock.scale > 0 and not self.is_default_value():
        seconds = seconds * clock.scale
    if getattr(_outer_wait, "callback_state", False):  # patch 41: the state's own timer, around a callback wait
        _outer_wait.callback_state = False
        seconds = seconds * 1.1 + _OUTER_MARGIN_S
    env.stack.append(seconds)


# Patch 41: a `.waitForTaskToken` state has two timers in moto, the state's (in the thread that runs it) and the
# callback wait's (in the task's own thread, started a moment later, after the Lambda or SQS call). AWS times the
# task out once, atomically with any callback. Here the callback wait decides, under `_CALLBACK_LOCK` with the
# callbacks themselves; the state's timer waits that much longer, so it is only the backstop for a task that never
# reached its wait.
_OUTER_MARGIN_S = 2.0
_outer_wait = threading.local()
_CALLBACK_LOCK = threading.Lock()


def _evaluate_with_timeout(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout

    @functools.wraps(original)
    def evaluate(self: Any, env: Any) -> Any:
        resource = getattr(self, "resource", None)
        callback_state = getattr(resource, "condition", None) == ResourceCondition.WaitForTaskToken
        _outer_wait.callback_state = callback_state
        try:
            return original(self, env)
        except EvalTimeoutError:
            if callback_state:  # the backstop fired first: the task's unanswered tokens are timed out from now on
                with _CALLBACK_LOCK:
                    for endpoint in list(env.callback_pool_manager._pool.values()):
                        if endpoint.get_outcome() is None and endpoint.consumer_error is None:
                            endpoint.consumer_error = CallbackConsumerTimeout()
            raise
        finally:
            _outer_wait.callback_state = False

    return evaluate


def _scaled_wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
    if wait_seconds > 0 and clock.scale > 0:
        env.program_state_event.wait(wait_seconds * clock.scale)


# ---------------------------------------------------------------- client cache
_client_cache: dict[tuple[str, str, bool], Any] = {}
_client_lock = threading.Lock()


def _make_cached_boto_client_for(original: Callable[..., Any]) -> Callable[..., Any]:
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's version ignores state_credentials (every client uses fixed test keys), so the cache may too.
        from moto.core.models import botocore_stubber

        key = (region, service, botocore_stubber.enabled)
        with _client_lock:
            client = _client_cache.get(key)
            if client is None:
                client = _client_cache[key] = original(region, service)
        return client

    return boto_client_for


# ---------------------------------------------------------------- ASL parse cache
_tree_cache: dict[str, tuple[Any, Any]] = {}
_STATEFUL_STATE_TYPES = ('"Type": "Map"', '"Type":"Map"', '"Type": "Parallel"', '"Type":"Parallel"')


def _make_cached_parse(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    def parse(definition: str) -> tuple[Any, Any]:
        cached = _tree_cache.get(definition)
        if cached is None:
            cached = _tree_cache[definition] = original(definition)  # raises ASLParserException when invalid
            return cached
        program, tree = cached
        if any(marker in definition for marker in _STATEFUL_STATE_TYPES):
            return Preprocessor().visit(tree), tree
        return program, tree

    return staticmethod(parse)  # type: ignore[return-value]


# ---------------------------------------------------------------- stream capture
_stream_lock = threading.RLock()


def _make_stream_add(on_record: Callable[[Any, dict[str, Any]], None]) -> Callable[..., None]:
    from moto.dynamodb.models.table import StreamRecord

    def add(self: Any, old: Any, new: Any) -> None:
        view_type = self.table.stream_specification["StreamViewType"]
        event_name = "INSERT" if old is None else ("REMOVE" if new is None else "MODIFY")
        with _stream_lock:
            # Records are never dropped from the shard, so len(items) gives unique, increasing numbers.
            sequence = self.starting_sequence_number + len(self.items)
            record = StreamRecord(self.table, view_type, event_name, old, new, sequence)
            self.items.append(record)
            on_record(self.table, record.to_json())

    return add


# ---------------------------------------------------------------- apply / undo
_originals: dict[tuple[Any, str], Any] = {}


_gc_found: tuple[int, ...] | None = None  # the thresholds patch 28 replaced, while it is applied
_ABSENT = object()  # an attribute moto does not have (an API it lacks): undo removes it


def _set(owner: Any, name: str, value: Any) -> None:
    _originals.setdefault((owner, name), getattr(owner, name, _ABSENT))
    setattr(owner, name, value)


class ProviderHooks(Protocol):
    def check(self, service: str, region: str) -> None: ...

    def sms_sent(self, region: str, message_id: str, phone: str) -> None: ...

    def email_sent(self, region: str, message: Any) -> None: ...

    def accepted(self, service: str, region: str) -> None: ...

    def callback(self) -> None: ...

    def text_sent(self, region: str, message_id: str, phone: str, topics_for: Any) -> None: ...


def _sfn_callback(original: Callable[..., Any], hooks: ProviderHooks) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        hooks.callback()
        return original(self, *args, **kwargs)

    return call


@functools.cache
def _callback_errors() -> tuple[type, type]:
    """TaskTimedOut and TaskDoesNotExist as moto renders an error: moto's own two classes (its Step Functions
    interpreter's API module) set no `TYPE`, so their code came out empty, and moto raises them with no message,
    which the class requires."""
    from moto.stepfunctions.parser.api import TaskDoesNotExist, TaskTimedOut

    class TimedOut(TaskTimedOut):
        TYPE = "TaskTimedOut"

    class Gone(TaskDoesNotExist):
        TYPE = "TaskDoesNotExist"

    return TimedOut, Gone


_TIMED_OUT = "Task Timed Out: 'Provided task does not exist anymore'"
_ANSWERED = "Task Does Not Exist: 'Provided task does not exist'"


def _endpoint_wait(original: Callable[..., Any]) -> Callable[..., Any]:
    """Patch 41: a `.waitForTaskToken` wait that ends with no answer leaves its endpoint timed out (AWS then answers
    a callback on its token TaskTimedOut)."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout

    @functools.wraps(original)
    def wait(self: Any, timeout: float | None = None) -> Any:
        original(self, timeout)
        with _CALLBACK_LOCK:  # decided with the callbacks: one that got in first is the outcome after all
            outcome = self.get_outcome()
            if outcome is None and self.consumer_error is None:
                self.consumer_error = CallbackConsumerTimeout()
        return outcome

    return wait


def _pool_notify(original: Callable[..., Any]) -> Callable[..., Any]:
    """Patch 41: a callback on a task that timed out, or that was answered, gets AWS's answer."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout

    TaskTimedOut, _ = _callback_errors()

    @functools.wraps(original)
    def notify(self: Any, callback_id: str, outcome: Any) -> bool:
        with _CALLBACK_LOCK:
            endpoint = self.get(callback_id)
            # AWS answers both alike: "Task Timed Out: 'Provided task does not exist anymore'"
            if endpoint is not None and (isinstance(endpoint.consumer_error, CallbackConsumerTimeout)
                                         or endpoint.get_outcome() is not None):
                raise TaskTimedOut(_TIMED_OUT)
            return original(self, callback_id, outcome)

    return notify


def _notify_live(task_token: str, outcome: Any, executions: list[Any]) -> bool:
    """Hand a callback's outcome to the execution whose pool holds the token, looking only at executions that still
    have an environment (a finished one's worker has none, nor has one between its worker's states: moto raised
    AttributeError there, where AWS answers InvalidToken). True once handed over."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackConsumerTimeout,
        CallbackNotifyConsumerError,
    )

    TaskTimedOut, TaskDoesNotExist = _callback_errors()
    for execution in executions:
        env = getattr(getattr(execution, "exec_worker", None), "env", None)
        if env is None:
            continue
        try:
            if env.callback_pool_manager.notify(callback_id=task_token, outcome=outcome):
                return True
        except CallbackNotifyConsumerError as consumer_error:
            if isinstance(consumer_error.callback_consumer_error, CallbackConsumerTimeout):
                raise TaskTimedOut(_TIMED_OUT) from None
            raise TaskDoesNotExist(_ANSWERED) from None
    return False


def _send_task_success(self: Any, task_token: str, outcome: str) -> Any:
    """Patch 41: `send_task_success` as moto writes it (running executions only), through `_notify_live`."""
    from moto.stepfunctions.exceptions import InvalidToken
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess

    answer = CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
    if _notify_live(task_token, answer, self._get_executions(ExecutionStatus.RUNNING)):
        return None
    raise InvalidToken()


def _failure_with_cause(self: Any) -> Any:
    """Patch 41: `StepFunctionResponse.send_task_failure` handing the request's `cause` on (moto passed the error
    only, so every failure told by a task token reached the execution history without its cause)."""
    from moto.core.responses import EmptyResult

    self.stepfunction_backend.send_task_failure(self._get_param("taskToken"), error=self._get_param("error"),
                                                cause=self._get_param("cause"))
    return EmptyResult()


def _send_task_failure(self: Any, task_token: str, error: Any = None, cause: Any = None) -> Any:
    """Patch 41: `send_task_failure` as moto writes it (every execution), through `_notify_live`."""
    from moto.stepfunctions.exceptions import InvalidToken
    from moto.stepfunctions.parser.api import SendTaskFailureOutput
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeFailure

    answer = CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
    if _notify_live(task_token, answer, self._get_executions()):
        return SendTaskFailureOutput()
    raise InvalidToken()


def _sns_publish(original: Callable[..., Any], hooks: ProviderHooks) -> Callable[..., Any]:
    @functools.wraps(original)
    def publish(self: Any, message: str, arn: str | None = None, phone_number: str | None = None,
                *args: Any, **kwargs: Any) -> Any:
        if phone_number:  # an SMS: the provider call. Topic publishes are our own plumbing.
            hooks.check("sns", self.region_name)
        message_id = original(self, message, arn, phone_number, *args, **kwargs)
        if phone_number:
            hooks.sms_sent(self.region_name, message_id, phone_number)
            hooks.accepted("sns", self.region_name)
        return message_id

    return publish


def _ses_send(original: Callable[..., Any], hooks: ProviderHooks, receipts: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        hooks.check("ses", self.region_name)
        message = original(self, *args, **kwargs)
        if receipts:
            hooks.email_sent(self.region_name, message)
        hooks.accepted("ses", self.region_name)
        return message

    return send


def _scaled_visibility(self: Any, visibility_timeout: int) -> None:
    """SQS visibility timeouts (the queue's, and those a consumer sets to put a message back) on the time scale."""
    from moto.core.utils import unix_time_millis

    self.visible_at = unix_time_millis() + float(visibility_timeout) * 1000 * (clock.scale or 0.001)


class _CompressedWall:
    """Epoch seconds for the pacer, running 1/time_scale times faster than the wall clock (as simulated time);
    a sender's wait lasts the scaled time, with the other functions free to run meanwhile (`pause`)."""

    def __init__(self, scale: float, pause: Callable[[float], None] | None) -> None:
        self._scale = scale or 0.001
        self._speed = 1 / self._scale
        self._origin = _real_time.time()
        self._pause = pause or _real_time.sleep

    def time(self) -> float:
        return self._origin + (_real_time.time() - self._origin) * self._speed

    def sleep(self, seconds: float) -> None:
        self._pause(seconds * self._scale)


# ---------------------------------------------------------------- SQS visibility checks
def _queue_messages(self: Any) -> list[Any]:
    """`Queue.messages`: the visible, undelayed messages, against one clock reading."""
    now = _real_time.time() * 1000.0
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


def _message_visible(self: Any) -> bool:
    return _real_time.time() * 1000.0 > self.visible_at


def _message_delayed(self: Any) -> bool:
    return _real_time.time() * 1000.0 < self.delayed_until


def _within_retention(self: Any, queue_name: str, message: Any) -> bool:
    """`SQSBackend.is_message_valid_based_on_retention_period` without building the queue's attribute map."""
    retain_until = int(self.get_queue(queue_name).message_retention_period) + message.sent_timestamp / 1000
    return not retain_until <= _real_time.time()


def _locked_cache(load: Callable[[str], Any]) -> Callable[[str], Any]:
    """Cache a service model per service, loading each once even when a hundred threads ask at the same moment
    (an unlocked cache lets every one of them miss and read the model from disk: a 30 s stall in a burst)."""
    models: dict[str, Any] = {}
    lock = threading.Lock()

    @functools.wraps(load)
    def get(service_name: str) -> Any:
        model = models.get(service_name)
        if model is None:
            with lock:
                model = models.get(service_name)
                if model is None:
                    model = models[service_name] = load(service_name)
        return model

    return get


def _own_operation_models() -> Callable[[Any, str], Any]:
    """Patch 42: moto's `ServiceModel.operation_model` wraps botocore's, and both cache under the same key of the
    model's instance cache. A service model is shared by every thread (moto caches one per service), so a thread
    asking between the two found botocore's operation model, which has no `http_trait`: moto's router failed with
    AttributeError (the borrower API's SES email answered 500 in one test run of a few). moto's operation models are
    now kept under a key of their own; botocore's stay under theirs."""
    from moto.core.model import BotocoreServiceModel, OperationModel

    def operation_model(self: Any, operation_name: str) -> Any:
        key = ("localcloud_operation_model", operation_name)
        found = self._instance_cache.get(key)
        if found is None:
            base = BotocoreServiceModel.operation_model(self, operation_name)
            found = self._instance_cache.setdefault(
                key, OperationModel(getattr(base, "_operation_model", {}), self, operation_name))
        return found

    return operation_model


def _dynamodb_params_copy() -> Callable[..., Any]:
    """Patch 43: a boto3 DynamoDB resource copies every request's parameters before transforming them
    (`copy_dynamodb_params`, registered when the resource is made) with Python's generic `deepcopy`, which asks each
    value's type how to copy it. The copy here walks the dicts and lists itself, keeps the values `deepcopy` keeps
    as they are (str, int, float, bool, None, Decimal, bytes), and hands any other value to `deepcopy` as boto3
    does, so the result is the same: new dicts and lists, nothing shared with the caller's that could be changed."""
    import copy
    from decimal import Decimal

    from boto3.dynamodb.transform import _ForgetfulDict

    kept = frozenset({str, int, float, bool, type(None), Decimal, bytes})

    def walk(value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            return {key if type(key) is str else copy.deepcopy(key, _ForgetfulDict()): walk(item)
                    for key, item in value.items()}
        if kind is list:
            return [walk(item) for item in value]
        if kind in kept:
            return value
        return copy.deepcopy(value, memo=_ForgetfulDict())

    def copy_dynamodb_params(params: Any, **_kwargs: Any) -> Any:
        return walk(params)

    return copy_dynamodb_params


_dynamodb_write_lock = threading.RLock()
_sqs_lock = threading.RLock()


_update_context = threading.local()


class _CopyForUpdate:
    """`copy` as moto.dynamodb.models sees it: the one deep copy UpdateItem makes for a table without a stream
    (its stream record's old image) is skipped; every other copy is made."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if getattr(_update_context, "no_old_image", False):
            _update_context.no_old_image = False
            return value
        return self._module.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _make_tree_copy(deepcopy: Callable[..., Any]) -> Callable[..., Any]:
    from moto.dynamodb.parsing.ast_nodes import Node

    def copy_node(node: Any, parent: Any) -> Any:
        twin = object.__new__(type(node))
        twin.__dict__ = dict(node.__dict__)
        twin.parent = parent
        if isinstance(node.children, list):
            twin.children = [copy_node(c, twin) if isinstance(c, Node) else
                             c if isinstance(c, (str, int, float, bool, type(None))) else deepcopy(c)
                             for c in node.children]
        return twin

    def tree_copy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Node) and value.parent is None and memo is None:  # a whole parsed expression
            return copy_node(value, None)
        return deepcopy(value, memo)

    return tree_copy


def _update_handler(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_item(self: Any) -> Any:
        _update_context.no_old_item = self.body.get("ReturnValues", "NONE") in ("NONE", "ALL_NEW")
        try:
            return original(self)
        finally:
            _update_context.no_old_item = False

    return update_item


def _get_item_unless_update(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_update_context, "no_old_item", False):  # the handler's look at the item before its update
            _update_context.no_old_item = False
            return None
        return original(self, *args, **kwargs)

    return get_item


def _update_without_old_image(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        _update_context.no_old_image = self.get_table(table_name).stream_shard is None
        try:
            return original(self, table_name, *args, **kwargs)
        finally:
            _update_context.no_old_image = False

    return update_item


def _atomic(original: Callable[..., Any], lock: Any = _dynamodb_write_lock) -> Callable[..., Any]:
    @functools.wraps(original)
    def write(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    return write


def _validated_start(original: Callable[..., Any], hooks: ProviderHooks | None) -> Callable[..., Any]:
    @functools.wraps(original)
    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        if hooks is not None:
            hooks.check("states", self.region_name)  # ThrottlingException when the simulator says so
        if name is not None:
            self._validate_name(name)  # InvalidName / ValidationException (over 80 characters), as AWS answers
        return original(self, state_machine_arn, name, *args, **kwargs)

    return start_execution


# ---------------------------------------------------------------- RedriveExecution
_REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")


def unsuccessful_state(events: list[dict[str, Any]]) -> tuple[str, Any]:
    """The state an execution stopped in (entered, never exited) and the input it entered with."""
    import json

    open_states: list[tuple[str, str]] = []
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered:
            open_states.append((entered["name"], entered.get("input") or "{}"))
        elif exited and open_states and open_states[-1][0] == exited["name"]:
            open_states.pop()
    if not open_states:
        raise ValueError("the execution has no unsuccessful state to continue from")
    name, text = open_states[-1]
    return name, json.loads(text)


def _redrive_worker(execution: Any, start_at: str, state_input: Any, redrive_count: int) -> Any:
    import json

    from moto.stepfunctions.parser.api import ExecutionRedrivenEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    worker = execution._get_start_execution_worker()
    previous = list(execution.exec_worker.env.event_manager._history_event_list)
    definition = json.loads(execution.state_machine.definition)
    definition["StartAt"] = start_at
    redriven_definition = json.dumps(definition)

    # The history goes on at once (as AWS shows ExecutionRedriven as soon as the call returns); the run, in the
    # worker's thread.
    env = worker._get_evaluation_environment()
    worker.env = env
    env.states.reset(state_input)
    env.event_manager._history_event_list.extend(previous)
    env.event_manager._event_id_gen._next_id = len(previous) + 1
    env.event_history_context = EventHistoryContext(previous_event_id=len(previous))
    env.event_manager.add_event(
        context=env.event_history_context, event_type=HistoryEventType.ExecutionRedriven,
        event_details=EventDetails(executionRedrivenEventDetails=ExecutionRedrivenEventDetails(
            redriveCount=redrive_count)))

    def logic() -> None:
        program = AmazonStateLanguageParser.parse(redriven_definition)[0]
        program.eval(env)
        worker._execution_communication.terminated()

    worker._execution_logic = logic
    return worker


def _redrive_execution(self: Any, execution_arn: str, client_token: str | None = None) -> Any:
    import datetime

    from moto.stepfunctions.parser.api import ExecutionNotRedrivable
    from moto.stepfunctions.parser.api import ExecutionStatus as Status

    execution = self.describe_execution(execution_arn)  # ExecutionDoesNotExist as AWS answers
    status = execution.exec_status.value if execution.exec_status is not None else "RUNNING"
    if status not in _REDRIVABLE:
        raise ExecutionNotRedrivable(f"Execution {execution_arn} is {status}: only FAILED, TIMED_OUT or ABORTED "
                                     "executions can be redriven")
    events = execution.exec_worker.env.event_manager.get_event_history()
    start_at, state_input = unsuccessful_state(events)
    execution.redrive_count = getattr(execution, "redrive_count", 0) + 1
    worker = _redrive_worker(execution, start_at, state_input, execution.redrive_count)
    execution.redrive_date = datetime.datetime.now(tz=datetime.timezone.utc)
    execution.exec_status, execution.stop_date = Status.RUNNING, None
    execution.error = execution.cause = execution.output = None
    execution.exec_worker = worker
    worker.start()
    return execution


class _Detached:
    """The communication of a worker whose execution was aborted under it: its late end changes nothing."""

    def terminated(self) -> None:
        return None


def _stop_aborts_waiting_tasks(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def stop(self: Any, stop_date: Any, error: str | None, cause: str | None) -> Any:
        from moto.stepfunctions.parser.api import ExecutionAbortedEventDetails, HistoryEventType
        from moto.stepfunctions.parser.api import ExecutionStatus as Status
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

        result = original(self, stop_date=stop_date, error=error, cause=cause)
        env = self.exec_worker.env if self.exec_worker else None
        waiting = env is not None and any(e.get_outcome() is None
                                          for e in list(env.callback_pool_manager._pool.values()))
        if waiting:  # a Wait state wakes by itself; a task waiting for its callback would not, for days
            self.exec_worker._execution_communication = _Detached()
            env.event_manager.add_event(
                context=env.event_history_context, event_type=HistoryEventType.ExecutionAborted,
                event_details=EventDetails(executionAbortedEventDetails=ExecutionAbortedEventDetails(
                    error=error or "", cause=cause or "")))
            self.exec_status, self.stop_date = Status.ABORTED, stop_date
        return result

    return stop


def _redrive_response(self: Any) -> Any:
    from moto.core.responses import ActionResult

    execution = self.stepfunction_backend.redrive_execution(self._get_param("executionArn"),
                                                            self._get_param("clientToken"))
    return ActionResult({"redriveDate": execution.redrive_date})


def _plain_json_for_dynamodb(original: Callable[..., Any]) -> Callable[..., Any]:
    import json

    @functools.wraps(original)
    def execute_result(self: Any, context: Any) -> Any:
        result = self.result
        if context.service_model.service_name == "dynamodb" and isinstance(result, dict):
            try:
                body = json.dumps(result)
            except (TypeError, ValueError):
                return original(self, context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return original(self, context)

    return execute_result


def _lookup_without_lock(original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.core.base_backend import BackendDict

    @functools.wraps(original)
    def getitem(self: Any, account_id: str) -> Any:
        found = dict.get(self, account_id)
        if found is not None and self in BackendDict._instances:
            return found
        return original(self, account_id)

    return getitem


def _user_agent_per_client(original: Callable[[Any], str]) -> Callable[[Any], str]:
    """`UserAgentString.to_string`, remembered per UserAgentString and what its string is built from besides its
    own fields: the client config (`with_client_config` copies the object with another) and the features of the
    client and of the request context (retry mode, paginator, waiter...)."""
    import weakref

    from botocore.context import get_context

    strings: weakref.WeakKeyDictionary[Any, dict[Any, str]] = weakref.WeakKeyDictionary()

    @functools.wraps(original)
    def to_string(self: Any) -> str:
        context = get_context()
        key = (id(self._client_config), frozenset(self._client_features or ()),
               frozenset(context.features) if context is not None else frozenset())
        known = strings.get(self)
        if known is None:
            known = strings.setdefault(self, {})
        text = known.get(key)
        if text is None:
            text = known[key] = original(self)
        return text

    return to_string


def _camelcase_kept(original: Callable[[str], str]) -> Callable[[str], str]:
    """`camelcase_to_underscores`: a pure function of its string, computed once per string (moto converts every
    request's action name, and SQS every queue attribute's name on every send, a character at a time)."""
    cached = functools.lru_cache(maxsize=4096)(original)

    @functools.wraps(original)
    def convert(argument: str) -> str:
        try:
            return cached(argument)
        except TypeError:  # not hashable: not a string, converted (or refused) as moto does
            return original(argument)

    return convert


def _keep_camelcase_conversions() -> None:
    """Patch 39 in every module of `_CAMELCASE_USERS` (each imported the function by name)."""
    from moto.core import utils as core_utils

    converting = _camelcase_kept(core_utils.camelcase_to_underscores)
    for name in _CAMELCASE_USERS:
        _set(importlib.import_module(name), "camelcase_to_underscores", converting)


_LIST_ELEMENT = re.compile(r"(.+)\[(\d+)\]$")  # moto's `find_nested_key`: a path step naming a list element


def _project(self: Any, projection_expressions: list[list[str]]) -> Any:
    """`Item.project` converting only the top-level attribute each path starts from (patch 40). `find_nested_key`
    looks at the top level for the path's first step as written, or for the list it indexes (`attempts` of
    `attempts[0]`), and never anywhere else: those attributes, converted as `Item.to_regular_json` converts each one,
    are all it can see of the whole item moto converted."""
    from moto.dynamodb.models import dynamo_type

    result: dict[str, Any] = {}
    for expr in projection_expressions:
        first = expr[0]
        indexed = _LIST_ELEMENT.match(first)
        names = (first, indexed.group(1)) if indexed else (first,)
        seen = {name: dynamo_type.deserializer.deserialize(self.attrs[name].to_regular_json())
                for name in names if name in self.attrs}
        dynamo_type.merge_dicts(result, dynamo_type.find_nested_key(expr, seen))
    return dynamo_type.Item(hash_key=self.hash_key, range_key=self.range_key,
                            attrs=dynamo_type.serializer.serialize(result)["M"])


def _random_string(self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
    """`MotoRandom.get_random_string` with one draw for the whole string (same pool, same generator)."""
    import string

    pool = string.ascii_letters + (string.digits if include_digits else "")
    text = "".join(self.choices(pool, k=length))
    return text.lower() if lower_case else text


def _cached_lexing(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    from collections import deque

    @functools.lru_cache(maxsize=4096)
    def tokens(expression: str) -> tuple[tuple[str, str], ...]:
        from moto.dynamodb.comparisons import ConditionExpressionParser

        return tuple((node.nonterminal, node.text) for node in original(ConditionExpressionParser(expression, {}, {})))

    @functools.wraps(original)
    def lex(self: Any) -> Any:
        literal, make = self.Kind.LITERAL, self.Node
        return deque(make(nonterminal=kind, kind=literal, text=text, value=text, children=[])
                     for kind, text in tokens(self.condition_expression))

    return lex


_checked_expressions: dict[tuple[Any, ...], Any] = {}


def _expression_checks_once(init: Callable[..., None], validate: Callable[[Any], Any]
                            ) -> tuple[Callable[..., None], Callable[[Any], Any]]:
    from moto.dynamodb.parsing.validators import (
        ActionCountValidator,
        OverlappingPathsValidator,
        UpdateHashRangeKeyValidator,
    )

    expression_only = (ActionCountValidator, OverlappingPathsValidator, UpdateHashRangeKeyValidator)

    @functools.wraps(init)
    def remember_source(self: Any, expression: Any, expression_attribute_names: Any, *args: Any, **kwargs: Any
                        ) -> None:
        init(self, expression, expression_attribute_names, *args, **kwargs)
        table = kwargs.get("table", args[2] if len(args) > 2 else None)
        self._localcloud_checks = (id(expression), tuple(sorted((expression_attribute_names or {}).items())),
                                   tuple(table.table_key_attrs) if table is not None else None)
        self._localcloud_source = expression

    @functools.wraps(validate)
    def validated(self: Any) -> Any:
        key = getattr(self, "_localcloud_checks", None)
        if key is not None and _checked_expressions.get(key) is self._localcloud_source:
            self.processors = [p for p in self.processors if not isinstance(p, expression_only)]
        result = validate(self)
        if key is not None:
            if len(_checked_expressions) > 8192:
                _checked_expressions.clear()
            _checked_expressions[key] = self._localcloud_source  # held, so its id names no other tree meanwhile
        return result

    return remember_source, validated



class _ValueName(str):
    """An expression attribute value in a kept condition tree (patch 33): its name, looked up per request."""


def _cached_condition_parse(parse: Callable[[Any], Any], make_operand: Callable[[Any, Any], Any]
                            ) -> tuple[Callable[[Any], Any], Callable[[Any, Any], Any]]:
    from moto.dynamodb.comparisons import AttributeValue, ConditionExpressionParser

    kept: dict[tuple[Any, ...], tuple[Any, list[str], list[str]]] = {}
    value_kind = ConditionExpressionParser.Kind.EXPRESSION_ATTRIBUTE_VALUE

    def tree(expression: str, names: dict[str, str], values: dict[str, Any]) -> tuple[Any, list[str], list[str]]:
        key = (expression, tuple(sorted(names.items())), tuple(sorted(values)))
        entry = kept.get(key)
        if entry is None:
            template = ConditionExpressionParser(expression, names, {name: _ValueName(name) for name in values})
            template._make_op_condition = lambda node: node  # stop before the operators: keep the tree
            node = parse(template)
            entry = (node, list(template.expr_attr_names_found), list(template.expr_attr_values_found))
            if len(kept) > 4096:
                kept.clear()
            kept[key] = entry
        return entry

    @functools.wraps(parse)
    def parsed(self: Any) -> Any:
        expression = self.condition_expression
        if not expression:
            return parse(self)
        try:
            node, names_found, values_found = tree(expression, self.expression_attribute_names or {},
                                                   self.expression_attribute_values or {})
        except Exception:
            return parse(self)  # raises what moto raises for this condition
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return self._make_op_condition(node)

    @functools.wraps(make_operand)
    def operand(self: Any, node: Any) -> Any:
        if node.kind == value_kind and type(node.value) is _ValueName:
            return AttributeValue(self.expression_attribute_values[node.value])
        return make_operand(self, node)

    return parsed, operand



def _scope_only_sigv4(add_auth: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Patch 34: SigV4 for a request moto's in-process mock answers, without computing the signature."""
    import botocore.auth
    from botocore.exceptions import NoCredentialsError

    from localcloud.fastlane import mocked

    @functools.wraps(add_auth)
    def signed(self: Any, request: Any) -> Any:
        if type(self) is not botocore.auth.SigV4Auth or not mocked(request.url) or not _signatures_unchecked():
            return add_auth(self, request)
        if self.credentials is None:
            raise NoCredentialsError()
        request.context["timestamp"] = botocore.auth.get_current_datetime().strftime(botocore.auth.SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        self._inject_signature_to_request(request, "0" * 64)
        return None

    return signed


def _signatures_unchecked() -> bool:
    """moto checks no signature (its IAM checks are off) and passes nothing through to AWS: patch 34 may skip the
    signature. Otherwise every request is signed as botocore signs it."""
    import math

    from moto import settings
    from moto.core.config import default_user_config

    passthrough = default_user_config.get("core", {}).get("passthrough", {})
    return math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT) and not passthrough.get("urls") \
        and not passthrough.get("services")


_matched_urls: dict[str, tuple[str, Callable[..., Any]]] = {}


def _matched_once(process_request: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Patch 34: moto's stubber with the handler each URL matched kept, as its loop would find it again."""
    import re

    from moto.core import botocore_stubber as stubber
    from moto.core.exceptions import HTTPException

    from localcloud.fastlane import moto_serves

    def find(clean_url: str) -> tuple[str, Callable[..., Any]] | None:
        """moto's own search (`BotocoreStubber.process_request`): the first service pattern that matches and is not
        passed through, then the first of that service's URLs that matches."""
        import moto.backends as backends
        from moto.core import DEFAULT_ACCOUNT_ID

        if stubber.passthrough_url(clean_url):
            return None
        for service, pattern in stubber.backend_index.backend_url_patterns:
            if pattern.match(clean_url):
                if stubber.passthrough_service(service) or not stubber.service_whitelisted(service):
                    return None
                backend_dict = backends.get_backend(service)
                if isinstance(backend_dict, stubber.BackendDict):
                    accounts = backend_dict[DEFAULT_ACCOUNT_ID]
                    backend = accounts["us-east-1"] if "us-east-1" in accounts else accounts["aws"]
                else:
                    backend = backend_dict["global"]
                for url, method in backend.urls.items():
                    if re.compile(url).match(clean_url):
                        return service, method
                return None
        return None

    @functools.wraps(process_request)
    def process(self: Any, request: Any) -> Any:
        parsed_url, _ = stubber.get_equivalent_url_in_aws_domain(request.url)
        clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
        found = _matched_urls.get(clean_url)
        if found is not None and not moto_serves(found[0], clean_url):
            found = None  # moto's configuration changed since: its own search answers
        if found is None:
            found = find(clean_url)
            if found is None:
                return process_request(self, request)  # passed through, refused or unknown: as moto answers it
            if len(_matched_urls) > 4096:
                _matched_urls.clear()
            _matched_urls[clean_url] = found
        from moto.moto_api import recorder

        normalized = stubber.normalize_request(request)
        try:
            recorder._record_request(normalized)
            return found[1](normalized, normalized.raw_url, normalized.headers)
        except HTTPException as err:
            return err.code, err.get_headers(), err.get_body()

    return process



_ATTRIBUTE_VALUE_MEMBERS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})
_SCALAR_MEMBERS = {"S": str, "N": str, "NULL": bool, "BOOL": bool}
_attribute_value_shapes: dict[int, tuple[Any, bool]] = {}


def _is_attribute_value(shape: Any) -> bool:
    """Whether `shape` is DynamoDB's AttributeValue as patch 35 knows it: exactly its ten members, none renamed, and
    no constraint botocore validates on it, its members, its map keys or its set items."""
    if shape.name != "AttributeValue":
        return False
    known = _attribute_value_shapes.get(id(shape))
    if known is not None and known[0] is shape:
        return known[1]
    checked = {"required", "min", "document", "union", "jsonvalue"}
    answer = shape.type_name == "structure" and set(shape.members) == _ATTRIBUTE_VALUE_MEMBERS
    if answer:
        members = shape.members
        parts = [shape, *members.values(), members["M"].key, members["SS"].member, members["NS"].member]
        nested = (members["M"].value, members["L"].member)  # maps and lists hold attribute values again
        answer = (not shape.is_document_type and not shape.is_tagged_union
                  and all(inner.name == shape.name for inner in nested)
                  and all(not (checked & set(part.metadata)) and not part.serialization for part in parts))
    if len(_attribute_value_shapes) > 256:  # one per client model; clients come and go
        _attribute_value_shapes.clear()
    _attribute_value_shapes[id(shape)] = (shape, answer)
    return answer


def _plain_value(value: Any) -> bool:
    """An attribute value of strings, string numbers, booleans, nulls, string sets, maps and lists only."""
    if type(value) is not dict:
        return False
    for kind, inner in value.items():
        scalar = _SCALAR_MEMBERS.get(kind)
        if scalar is not None:
            if type(inner) is not scalar:
                return False
        elif not _plain_container(kind, inner):
            return False
    return True


def _plain_container(kind: str, inner: Any) -> bool:
    if kind == "M":
        return type(inner) is dict and all(type(name) is str and _plain_value(item) for name, item in inner.items())
    if type(inner) is not list or kind not in ("L", "SS", "NS"):  # binary values, unknown members: botocore's way
        return False
    if kind == "L":
        return all(_plain_value(item) for item in inner)
    return all(type(item) is str for item in inner)


def _attribute_values_validated_as_given(validate: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(validate)
    def validated(self: Any, params: Any, shape: Any, errors: Any, name: str) -> Any:
        if _is_attribute_value(shape) and _plain_value(params):
            return None  # botocore's checks find nothing to report in such a value
        return validate(self, params, shape, errors, name)

    return validated


def _attribute_values_serialized_as_given(serialize: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(serialize)
    def serialized_as_given(self: Any, serialized: Any, value: Any, shape: Any, key: Any) -> Any:
        if key is not None and _is_attribute_value(shape) and _plain_value(value):
            serialized[key] = value  # what botocore builds from it, member by member
            return None
        return serialize(self, serialized, value, shape, key)

    return serialized_as_given



class _NotJson(Exception):
    pass


_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _json_copy(item) for key, item in value.items()}
    if kind is list:
        return [_json_copy(item) for item in value]
    if kind in _JSON_SCALARS:
        return value
    raise _NotJson


class _JsonCopy:
    """`copy` as moto's Step Functions interpreter modules see it (patch 36): JSON values copied by a plain walk,
    anything else by Python's deepcopy."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if memo is None:
            try:
                return _json_copy(value)
            except (_NotJson, RecursionError):
                pass
        return self._module.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)




class _PerThreadDict(MutableMapping):  # type: ignore[type-arg]
    """A dict each thread sees its own contents of (patch 32), starting from `initial()` in each thread."""

    def __init__(self, initial: Callable[[], dict[Any, Any]] = dict) -> None:
        self._local = threading.local()
        self._initial = initial

    def _own(self) -> dict[Any, Any]:
        own = getattr(self._local, "data", None)
        if own is None:
            own = self._local.data = self._initial()
        return own

    def __getitem__(self, key: Any) -> Any:
        return self._own()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._own()[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._own()[key]

    def __iter__(self) -> Any:
        return iter(self._own())

    def __len__(self) -> int:
        return len(self._own())

    def copy(self) -> dict[Any, Any]:
        return dict(self._own())


def _metrics_sets() -> dict[str, _PerThreadDict]:
    """Patch 32's per-thread dicts for powertools' Metrics. Default dimensions stay shared (a handler sets them once,
    at import, for every invocation): each thread's dimensions start from them, as `Metrics()` and each flush's
    `clear_metrics` start the shared dimensions from them."""
    from aws_lambda_powertools.metrics import Metrics

    def defaults() -> dict[str, str]:
        return {k: v if isinstance(v, str) else str(v) for k, v in Metrics._default_dimensions.items()}

    return {"_metrics": _PerThreadDict(), "_dimensions": _PerThreadDict(defaults), "_metadata": _PerThreadDict()}


_GC_THRESHOLD = (20_000, 10, 10)


def _gc_threshold() -> tuple[int, ...]:
    """Patch 28: fewer collections while the local cloud runs; `undo` puts the thresholds found back."""
    import gc

    found = gc.get_threshold()
    gc.set_threshold(*_GC_THRESHOLD)
    return found


def _make_regular_json() -> Callable[[Any], dict[str, Any]]:
    """Built once at apply(): the method runs once per node of every value moto renders, so it imports nothing."""
    import base64
    import copy

    from moto.dynamodb.models.dynamo_type import DynamoType

    def regular_json(self: Any) -> dict[str, Any]:
        value = self.value
        if isinstance(value, dict):
            value = {k: v.to_regular_json() if isinstance(v, DynamoType) else copy.deepcopy(v)
                     for k, v in value.items()}
        elif isinstance(value, list):
            value = [v.to_regular_json() if isinstance(v, DynamoType) else copy.deepcopy(v) for v in value]
        else:
            value = copy.deepcopy(value)
        if self.is_binary() and isinstance(value, str):
            value = base64.b64decode(value)
        return {self.type: value}

    return regular_json


def _make_item_size(original: Callable[..., int]) -> Callable[..., int]:
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    def size(self: Any) -> int:
        kind, value = self.type, self.value
        if kind == "S":
            return len(value.encode("utf-8"))
        if kind == "N":
            return len(str(value))
        if kind == "L":
            return sum(v.size() for v in value)
        if kind == "M":
            return sum(bytesize(k) + (v if type(v) is DynamoType else DynamoType(v)).size() for k, v in value.items())
        return original(self)  # sets, binary, booleans and null: as moto measures them

    return size


_SIZE_LIMIT = 405000  # moto's LimitedSizeDict limit (between DynamoDB's measured 409 and 410 KB)
_sizes = threading.local()  # .running: {id(attrs): (attrs, exact total)} while one item is built or updated


def _attribute_size(value: Any) -> int:
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    return value.size() if type(value) is DynamoType else bytesize(str(value))


def _sized_setitem(original: Callable[..., None]) -> Callable[..., None]:
    """`LimitedSizeDict.__setitem__`: moto's check (the item's current size, every key and value, plus the new key and
    value, at most 405,000 bytes), with the current size carried from one attribute to the next while one item is
    built (`Item.__init__`) or one update runs (`UpdateExpressionExecutor.execute`) instead of summed again."""

    def setitem(self: Any, key: str, value: Any) -> None:
        running = getattr(_sizes, "running", None)
        if running is None:
            original(self, key, value)
            return
        from moto.dynamodb.exceptions import ItemSizeTooLarge
        from moto.dynamodb.models.utilities import bytesize

        kept = running.get(id(self))
        if kept is not None and kept[0] is self:
            current = kept[1]
        else:
            current = sum(bytesize(k) + _attribute_size(v) for k, v in self.items())
        added = bytesize(key) + _attribute_size(value)
        if current + added > _SIZE_LIMIT:
            running.pop(id(self), None)
            raise ItemSizeTooLarge
        replaced = bytesize(key) + _attribute_size(self[key]) if key in self else 0
        dict.__setitem__(self, key, value)
        running[id(self)] = (self, current - replaced + added)

    return setitem


class _SizeScope:
    """While open (on this thread), item sizes are carried from one attribute write to the next. Nested scopes share
    the outermost one's totals."""

    def __enter__(self) -> None:
        self.outer = getattr(_sizes, "running", None) is not None
        if not self.outer:
            _sizes.running = {}

    def __exit__(self, *_exc: Any) -> None:
        if not self.outer:
            _sizes.running = None


def _item_init_sized_once(original: Callable[..., None]) -> Callable[..., None]:
    """`Item.__init__`: the attributes are fresh values built from the request, none changes while the next is added,
    so the item's size is carried from one to the next (moto sums the whole item again for each: quadratic)."""

    @functools.wraps(original)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        with _SizeScope():
            original(self, *args, **kwargs)

    return init


def _update_sized_once(original: Callable[..., None]) -> Callable[..., None]:
    """`UpdateExpressionExecutor.execute`: one update's actions run with the item's size carried between its
    top-level SETs. Any other action (a nested SET, which changes a value in place, a REMOVE, an ADD, a DELETE)
    forgets it, so the next top-level SET sums the item again, as moto does."""

    @functools.wraps(original)
    def execute(self: Any, node: Any = None) -> None:
        if node is not None:
            return original(self, node)
        with _SizeScope():
            return original(self, node)

    return execute


def _forgetting_size_unless_top_level_set(original: Callable[..., None], top_level_set: bool) -> Callable[..., None]:
    @functools.wraps(original)
    def execute(self: Any, item: Any) -> None:
        try:
            return original(self, item)
        finally:
            running = getattr(_sizes, "running", None)
            if running is not None and not (top_level_set and len(self.get_path_expression_nodes()) == 1):
                running.pop(id(item.attrs), None)

    return execute


def _bucket_from_cloudformation(original: Callable[..., Any]) -> Callable[..., Any]:
    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str,
               **kwargs: Any) -> Any:
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        bucket = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = s3_backends[account_id][get_partition(region_name)]
        properties = cloudformation_json.get("Properties", {})
        locked = str(properties.get("ObjectLockEnabled", "false")).lower() == "true"
        if properties.get("VersioningConfiguration", {}).get("Status") or locked:
            backend.put_bucket_versioning(bucket.name, "Enabled" if locked else
                                          properties["VersioningConfiguration"]["Status"])
        block = properties.get("PublicAccessBlockConfiguration")
        if block:
            backend.put_public_access_block(bucket.name, {k: str(v).lower() for k, v in block.items()})
        if locked:
            retention = ((properties.get("ObjectLockConfiguration") or {}).get("Rule") or {}).get(
                "DefaultRetention") or {}
            backend.put_object_lock_configuration(
                bucket.name, True, mode=retention.get("Mode"),
                days=int(retention.get("Days", 0)), years=int(retention.get("Years", 0)))
        return bucket

    return classmethod(create)


def apply(*, invoke_lambda: Callable[..., tuple[str, bool, str]],
          on_stream_record: Callable[[Any, dict[str, Any]], None], time_scale: float,
          providers: ProviderHooks | None = None, pause: Callable[[float], None] | None = None,
          gate: Callable[..., None] | None = None) -> None:
    """Install every patch. `invoke_lambda(function, event)` runs a handler; `on_stream_record(table, record)`
    receives each new stream record; `gate()` runs before every AWS call made through botocore (senders first)."""
    check_internals()
    clock.scale = time_scale
    if _originals:
        undo()

    from moto.awslambda.models import LambdaFunction
    from moto.dynamodb.models.table import StreamShard
    from moto.stepfunctions import models as sfn_models
    from moto.stepfunctions.parser import models as parser_models
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path

    _set(LambdaFunction, "_invoke_lambda", lambda self, event=None: invoke_lambda(self, event))
    _set(StreamShard, "add", _make_stream_add(on_stream_record))
    _set(sfn_models, "stepfunctions_backends", parser_models.stepfunctions_parser_backends)
    _set(parser_models.StepFunctionsParserBackend, "start_execution",
         _validated_start(parser_models.StepFunctionsParserBackend.start_execution, providers))
    from moto.stepfunctions.responses import StepFunctionResponse

    _set(parser_models.StepFunctionsParserBackend, "redrive_execution", _redrive_execution)
    from moto.stepfunctions.parser.backend.execution import Execution

    _set(Execution, "stop", _stop_aborts_waiting_tasks(Execution.stop))
    _set(StepFunctionResponse, "redrive_execution", _redrive_response)
    cached = _make_cached_boto_client_for(boto_client.boto_client_for)
    for module in _BOTO_CLIENT_MODULES:
        _set(importlib.import_module(module), "boto_client_for", cached)
    _set(json_path, "parse", functools.lru_cache(maxsize=2048)(json_path.parse))
    from moto.stepfunctions.parser.asl.component.common.path import result_path

    _set(result_path, "parse", functools.lru_cache(maxsize=2048)(result_path.parse))
    for module_name in _SFN_COPYING_MODULES:
        module = importlib.import_module(module_name)
        _set(module, "copy", _JsonCopy(module.copy))
    _set(AmazonStateLanguageParser, "parse", _make_cached_parse(AmazonStateLanguageParser.parse))
    _set(retrier_decl, "time", _ScaledTime())
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackPoolManager

    _set(CallbackEndpoint, "wait", _endpoint_wait(CallbackEndpoint.wait))
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

    _set(ExecutionState, "_evaluate_with_timeout", _evaluate_with_timeout(ExecutionState._evaluate_with_timeout))
    _set(CallbackPoolManager, "notify", _pool_notify(CallbackPoolManager.notify))
    _set(parser_models.StepFunctionsParserBackend, "send_task_success", _send_task_success)
    _set(parser_models.StepFunctionsParserBackend, "send_task_failure", _send_task_failure)
    from moto.stepfunctions.responses import StepFunctionResponse

    _set(StepFunctionResponse, "send_task_failure", _failure_with_cause)
    if providers is not None:
        from moto.ses.models import SESBackend
        from moto.sns.models import SNSBackend

        _set(SNSBackend, "publish", _sns_publish(SNSBackend.publish, providers))
        _set(SESBackend, "send_email", _ses_send(SESBackend.send_email, providers, receipts=True))
        _set(SESBackend, "send_raw_email", _ses_send(SESBackend.send_raw_email, providers, receipts=True))
        for name in ("send_task_success", "send_task_failure"):
            _set(parser_models.StepFunctionsParserBackend, name,
                 _sfn_callback(getattr(parser_models.StepFunctionsParserBackend, name), providers))
    _set(Timeout, "_eval_body", _scaled_timeout)
    from moto.sqs.models import Message, Queue, SQSBackend

    _set(Message, "change_visibility", _scaled_visibility)
    _set(Queue, "messages", property(_queue_messages))
    _set(Message, "visible", property(_message_visible))
    _set(Message, "delayed", property(_message_delayed))
    _set(SQSBackend, "is_message_valid_based_on_retention_period", _within_retention)
    for name in ("send_message", "receive_message", "delete_message", "change_message_visibility"):
        _set(SQSBackend, name, _atomic(getattr(SQSBackend, name), _sqs_lock))
    import loan_notify.clock as domain_clock

    _set(domain_clock, "wall", _CompressedWall(time_scale, pause))
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    _set(dynamodb_models, "copy", _CopyForUpdate(dynamodb_models.copy))
    _set(DynamoHandler, "update_item", _update_handler(DynamoHandler.update_item))
    # The whole request under the lock, not only the backend's calls: moto's handler reads the live item again
    # after the backend returns (UpdateItem renders it, GetItem converts it), and a write from another thread
    # changing that item meanwhile raised "dictionary changed size during iteration".
    _set(DynamoHandler, "call_action", _atomic(DynamoHandler.call_action))
    from moto.dynamodb.parsing import validators as dynamodb_validators

    _set(dynamodb_validators, "deepcopy", _make_tree_copy(dynamodb_validators.deepcopy))
    for name in ("update_item", "put_item", "delete_item", "transact_write_items", "get_item", "query", "scan",
                 "batch_get_item"):
        method = getattr(DynamoDBBackend, name)
        if name == "get_item":
            method = _get_item_unless_update(method)
        elif name == "update_item":
            method = _update_without_old_image(method)
        _set(DynamoDBBackend, name, _atomic(method))
    from moto.core import responses as core_responses
    from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator

    _set(core_responses.ActionResult, "execute_result",
         _plain_json_for_dynamodb(core_responses.ActionResult.execute_result))
    from moto.core.base_backend import BackendDict

    _set(BackendDict, "__getitem__", _lookup_without_lock(BackendDict.__getitem__))
    from moto.dynamodb.models.dynamo_type import DynamoType

    _set(DynamoType, "to_regular_json", _make_regular_json())
    _set(DynamoType, "size", _make_item_size(DynamoType.size))
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
    from moto.dynamodb.parsing import executors

    _set(LimitedSizeDict, "__setitem__", _sized_setitem(LimitedSizeDict.__setitem__))
    _set(Item, "__init__", _item_init_sized_once(Item.__init__))
    _set(Item, "project", _project)
    _set(executors.UpdateExpressionExecutor, "execute", _update_sized_once(executors.UpdateExpressionExecutor.execute))
    for executor in (executors.SetExecutor, executors.RemoveExecutor, executors.AddExecutor,
                     executors.DeleteExecutor):
        _set(executor, "execute", _forgetting_size_unless_top_level_set(executor.execute,
                                                                         executor is executors.SetExecutor))
    from botocore.useragent import UserAgentString
    from moto.moto_api._internal.moto_random import MotoRandom

    _set(UserAgentString, "to_string", _user_agent_per_client(UserAgentString.to_string))
    _keep_camelcase_conversions()
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    _set(ConditionExpressionParser, "_lex_condition_expression",
         _cached_lexing(ConditionExpressionParser._lex_condition_expression))
    from botocore.auth import SigV4Auth
    from moto.core.botocore_stubber import BotocoreStubber

    _matched_urls.clear()
    _set(SigV4Auth, "add_auth", _scope_only_sigv4(SigV4Auth.add_auth))
    _set(BotocoreStubber, "process_request", _matched_once(BotocoreStubber.process_request))
    from botocore.serialize import JSONSerializer
    from botocore.validate import ParamValidator

    _set(ParamValidator, "_validate_structure",
         _attribute_values_validated_as_given(ParamValidator._validate_structure))
    _set(JSONSerializer, "_serialize_type_structure",
         _attribute_values_serialized_as_given(JSONSerializer._serialize_type_structure))
    parse, operand = _cached_condition_parse(ConditionExpressionParser.parse, ConditionExpressionParser._make_operand)
    _set(ConditionExpressionParser, "parse", parse)
    _set(ConditionExpressionParser, "_make_operand", operand)
    init, validate = _expression_checks_once(UpdateExpressionValidator.__init__, UpdateExpressionValidator.validate)
    _set(UpdateExpressionValidator, "__init__", init)
    _set(UpdateExpressionValidator, "validate", validate)
    _set(MotoRandom, "get_random_string", _random_string)
    from aws_lambda_powertools.metrics import Metrics

    for name, per_thread in _metrics_sets().items():
        _set(Metrics, name, per_thread)
    global _gc_found
    if _gc_found is None:
        _gc_found = _gc_threshold()
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

    _set(DepthFirstTraverser, "traverse", _traverse_once_typed)
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    _set(UpdateExpressionParser, "make",
         classmethod(functools.lru_cache(maxsize=4096)(UpdateExpressionParser.make.__func__)))
    _set(ActionCountValidator, "traverse", _check_from_root)
    _set(OverlappingPathsValidator, "traverse", _check_from_root)
    # moto loads the botocore service model from disk (listing every service directory) on every JSON-protocol
    # request it parses (SQS, for one): the model of a service never changes, so it is loaded once.
    from moto.core import errors as core_errors
    from moto.core import routing as core_routing
    from moto.core.model import ServiceModel as MotoServiceModel

    _set(MotoServiceModel, "operation_model", _own_operation_models())
    from boto3.dynamodb import transform as boto3_transform

    _set(boto3_transform, "copy_dynamodb_params", _dynamodb_params_copy())
    cached_model = _locked_cache(core_responses.get_service_model)
    for module in (core_responses, core_errors, core_routing):
        if hasattr(module, "get_service_model"):
            _set(module, "get_service_model", cached_model)
    _set(core_responses, "method_names_from_class",
         functools.lru_cache(maxsize=None)(core_responses.method_names_from_class))
    from moto.s3.models import FakeBucket

    _set(FakeBucket, "create_from_cloudformation_json",
         _bucket_from_cloudformation(FakeBucket.create_from_cloudformation_json))
    register_local_models()
    from moto.cloudformation.parsing import ResourceMap

    _set(ResourceMap, "load_parameters", _split_list_defaults(ResourceMap.load_parameters))
    _set(WaitFunction, "_wait_interval", _scaled_wait_interval)
    _register_smsvoice(providers)
    _register_before_call(gate)


_BEFORE_CALL = "before-call"
_before_call_handlers: list[Callable[..., Any]] = []


def _register_before_call(gate: Callable[..., None] | None) -> None:
    """Before every AWS call a botocore client makes, in every session: `gate` (senders first), then the DynamoDB
    fast lane (patch 26)."""
    import boto3
    from botocore import handlers

    from localcloud import fastlane

    _unregister_before_call()

    def before_call(**kwargs: Any) -> Any:
        if gate is not None:
            gate(**kwargs)
        return fastlane.answer(**kwargs)

    _before_call_handlers.append(before_call)
    handlers.BUILTIN_HANDLERS.append((_BEFORE_CALL, before_call))
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(_BEFORE_CALL, before_call, unique_id="localcloud-before-call")


def _unregister_before_call() -> None:
    import boto3
    from botocore import handlers

    for handler in _before_call_handlers:
        if (_BEFORE_CALL, handler) in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.remove((_BEFORE_CALL, handler))
    _before_call_handlers.clear()
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.unregister(_BEFORE_CALL, unique_id="localcloud-before-call")


def _register_smsvoice(providers: ProviderHooks | None) -> None:
    import boto3
    from botocore import handlers

    from localcloud import smsvoice

    smsvoice.backend.reset()
    smsvoice.backend.hooks = providers
    if (smsvoice.EVENT_NAME, smsvoice.answer) not in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.append((smsvoice.EVENT_NAME, smsvoice.answer))
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(smsvoice.EVENT_NAME, smsvoice.answer, unique_id="localcloud-smsvoice")


def _unregister_smsvoice() -> None:
    import boto3
    from botocore import handlers

    from localcloud import smsvoice

    if (smsvoice.EVENT_NAME, smsvoice.answer) in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.remove((smsvoice.EVENT_NAME, smsvoice.answer))
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.unregister(smsvoice.EVENT_NAME, unique_id="localcloud-smsvoice")
    smsvoice.backend.reset()


def _split_list_defaults(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def load_parameters(self: Any) -> None:
        original(self)
        for name, slot in self._template.get("Parameters", {}).items():
            value = self.resolved_parameters.get(name)
            kind = slot.get("Type", "")
            if isinstance(value, str) and (kind == "CommaDelimitedList" or kind.startswith("List<")):
                self.resolved_parameters[name] = self._parsed_resources[name] = value.split(",")

    return load_parameters


def register_local_models() -> None:
    """Add the CloudFormation types localcloud.cfn_models models to moto's model map."""
    from moto.cloudformation import parsing

    from localcloud import cfn_models  # noqa: F401 - defining the subclasses registers them

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def undo() -> None:
    _unregister_smsvoice()
    _unregister_before_call()
    for (owner, name), value in reversed(list(_originals.items())):
        if value is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, value)
    _originals.clear()
    _client_cache.clear()
    _tree_cache.clear()
    _checked_expressions.clear()
    _matched_urls.clear()
    _attribute_value_shapes.clear()
    global _gc_found
    if _gc_found is not None:
        import gc

        gc.set_threshold(*_gc_found)
        _gc_found = None
