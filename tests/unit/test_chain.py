"""The ledger's hash chain: one description of each write builds its update expression and replays it."""

import copy
from decimal import Decimal

from loan_notify.chain import GENESIS, Change, apply, canonical, change_of, digest, make_entry, verify


def _item(*changes):
    """A ledger item as DynamoDB would hold it after `changes` (the first creates it)."""
    doc, entries, head = {}, [], GENESIS
    for seq, change in enumerate(changes, start=1):
        record = change if isinstance(change, dict) else change.record()
        entry = make_entry(seq, f"2026-11-29T00:00:0{seq}Z", record, head)
        apply(doc, record)
        entries.append(entry)
        head = entry["hash"]
    return {**doc, "chain": entries, "chain_head": head, "chain_seq": len(entries)}


def _notice():
    opened = {"what": "opened", "item": {"notification_id": "N-1", "state": "STARTED", "attempts": []}}
    attempt = (Change("attempt").append("attempts", [{"attempt": 1, "channel": "SMS", "result": "SENT",
                                                      "receipts": {}}])
               .set("state", "SENT").remove("pending_attempt"))
    receipt = (Change("receipt_delivered").set_if_absent(("attempts", 0, "receipts", "delivered"), {"at": "t1"})
               .set(("attempts", 0, "delivery_status"), "DELIVERED").set("state", "DELIVERED")
               .add("resolved_cases", {"N-1-case1"}).add("review_cases", 1))
    return _item(opened, attempt, receipt)


def test_an_untouched_item_verifies():
    assert verify(_notice()) == []


def test_numbers_and_sets_hash_the_same_before_and_after_dynamodb():
    entry = make_entry(1, "t", {"what": "x", "ops": [["add", ["n"], 1], ["add", ["s"], {"b", "a"}]]}, GENESIS)
    read_back = copy.deepcopy(entry)
    read_back["seq"] = Decimal(1)
    assert digest(read_back) == entry["hash"]
    assert change_of(read_back) == {"what": "x", "ops": [["add", ["n"], 1], ["add", ["s"], ["a", "b"]]]}
    assert canonical({"x": Decimal("2.50")}) == {"x": "2.5"}


def test_the_entry_stores_the_change_as_the_text_it_hashed():
    entry = make_entry(1, "t", {"what": "x", "ops": [["set", ["n"], Decimal("2.50")]]}, GENESIS)
    assert entry["change"] == '{"ops":[["set",["n"],"2.5"]],"what":"x"}'
    assert entry["hash"] == digest({"seq": 1, "at": "t", "change": entry["change"], "prev_hash": GENESIS})


def test_an_item_whose_entries_hold_the_change_as_maps_still_verifies():
    """Entries written before the text form held the change as nested maps: verify reads both."""
    item = _notice()
    for entry in item["chain"]:
        entry["change"] = change_of(entry)
        entry["hash"] = digest(entry)
    for previous, entry in zip(item["chain"], item["chain"][1:]):
        entry["prev_hash"] = previous["hash"]
        entry["hash"] = digest(entry)
    item["chain_head"] = item["chain"][-1]["hash"]
    assert all(isinstance(e["change"], dict) for e in item["chain"])
    assert verify(item) == []
    item["chain"][1]["change"]["ops"][0][2][0]["result"] = "FAILED_PERMANENT"
    item["attempts"][0]["result"] = "FAILED_PERMANENT"
    assert [str(p) for p in verify(item)] == ["notice N-1 entry 2: was edited: its hash no longer matches its "
                                              "content (attempt)"]


def test_an_entry_whose_text_is_not_json_is_found():
    item = _notice()
    item["chain"][2]["change"] = "{not json"
    problems = [str(p) for p in verify(item)]
    assert "notice N-1 entry 3: was edited: its hash no longer matches its content (?)" in problems


def test_the_update_expression_is_built_from_the_same_description():
    change = (Change("receipt").set_if_absent(("attempts", 2, "receipts", "delivered"), {"at": "t"})
              .append("human_actions", [{"by": "li"}]).add("windows_missed", 1).remove("pending_attempt"))
    expression, names, values = change.expression(["chain_seq = :chain_next"])
    assert expression == ("SET chain_seq = :chain_next, #u0[2].#u1.#u2 = if_not_exists(#u0[2].#u1.#u2, :u0), "
                          "#u3 = list_append(if_not_exists(#u3, :u1), :u2) ADD #u4 :u3 REMOVE #u5")
    assert names == {"#u0": "attempts", "#u1": "receipts", "#u2": "delivered", "#u3": "human_actions",
                     "#u4": "windows_missed", "#u5": "pending_attempt"}
    assert values == {":u0": {"at": "t"}, ":u1": [], ":u2": [{"by": "li"}], ":u3": 1}


def test_replay_follows_dynamodb_semantics():
    doc = {"attempts": [{"receipts": {"delivered": {"at": "first"}}}], "n": Decimal(2), "s": {"a"}}
    apply(doc, {"ops": [["set_if_absent", ["attempts", Decimal(0), "receipts", "delivered"], {"at": "second"}],
                        ["add", ["n"], 3], ["add", ["s"], {"b"}], ["append", ["log"], ["x"]],
                        ["remove", ["missing"], None]]})
    assert doc == {"attempts": [{"receipts": {"delivered": {"at": "first"}}}], "n": Decimal(5), "s": {"a", "b"},
                   "log": ["x"]}


def test_an_attribute_edited_in_place_is_found_and_its_last_writer_named():
    item = _notice()
    item["attempts"][0]["result"] = "FAILED_PERMANENT"
    item["state"] = "CLOSED"
    problems = [str(p) for p in verify(item)]
    assert problems == ["notice N-1 entry 3: attribute 'attempts' differs from what the chain recorded "
                        "(last written by this entry)",
                        "notice N-1 entry 3: attribute 'state' differs from what the chain recorded "
                        "(last written by this entry)"]


def test_an_attribute_added_outside_the_chain_is_found():
    item = _notice()
    item["delivered_at"] = "2026-01-01T00:00:00Z"
    assert [str(p) for p in verify(item)] == ["notice N-1: attribute 'delivered_at' differs from what the chain "
                                              "recorded"]


def test_an_edited_entry_is_found_even_when_the_item_matches_it():
    item = _notice()
    edited = item["chain"][1]["change"].replace('"result":"SENT"', '"result":"FAILED_PERMANENT"')
    assert edited != item["chain"][1]["change"]
    item["chain"][1]["change"] = edited
    item["attempts"][0]["result"] = "FAILED_PERMANENT"
    assert [str(p) for p in verify(item)] == ["notice N-1 entry 2: was edited: its hash no longer matches its "
                                              "content (attempt)"]


def test_a_removed_entry_breaks_the_links():
    item = _notice()
    del item["chain"][1]
    problems = " | ".join(str(p) for p in verify(item))
    assert "entry 2: carries seq 3" in problems and "entry 2: does not link" in problems
    assert "chain head or length differs" in problems


def test_an_item_without_a_chain_fails():
    assert [str(p) for p in verify({"notification_id": "N-2", "state": "DELIVERED"})] == [
        "notice N-2: has no hash chain"]


def test_a_forged_entry_of_any_shape_is_reported_not_raised():
    item = _notice()
    for forged in ('{"what":"x","ops":[[]]}', '{"what":"x","ops":[["set",["state","deep"],"y"]]}', '[1,2]',
                   '{"what":"x","item":"not a map"}'):
        item["chain"][2]["change"] = forged
        problems = [str(p) for p in verify(item)]
        assert any("entry 3: was edited" in p for p in problems), forged
