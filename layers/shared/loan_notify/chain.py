"""Hash chain over every change to a ledger item: evidence that the record was not edited afterwards.

Each write to a notice is described as a `Change` (what happened, and the exact operations: set, set if absent,
append, add, remove, on attribute paths). The same description builds the DynamoDB update expression and is
appended to the item's `chain` as an entry `{seq, at, change, prev_hash, hash}`, where `change` is the change's
canonical JSON text, `hash` the sha256 of the entry's canonical JSON (without `hash`) and `prev_hash` the previous
entry's hash (`GENESIS` for the first). The item keeps `chain_head` (the last hash) and `chain_seq` (the entry
count), written in the same conditional write, so two writers never both extend the chain from one head.

The change is stored as the text it was hashed as, not as nested DynamoDB maps and lists: the entry is what a
verifier hashes, byte for byte, and the item stays one string per entry instead of hundreds of attribute values
(every write and read of a notice converts, sizes and checks each of them). Entries written as maps (before the
text form) still verify: `change_of` reads both.

`verify(item)` recomputes every hash and link, and replays the changes from nothing: the result must be the item
as stored. An attribute edited in place, an entry edited, removed or reordered: each is found and named.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64
CHAIN_ATTRIBUTES = frozenset({"chain", "chain_head", "chain_seq"})

Path = tuple[str | int, ...]


def canonical(value: Any) -> Any:
    """The JSON-able form a value has both before it is written and after DynamoDB gives it back."""
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(canonical(v) for v in value)
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else str(number.normalize())
    if isinstance(value, bytes | bytearray):
        return value.hex()
    raise TypeError(f"cannot chain a {type(value).__name__}")


def digest(entry: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of an entry, its own `hash` left out."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    text = json.dumps(canonical(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def change_text(change: dict[str, Any]) -> str:
    """The canonical JSON text a chain entry stores for a change."""
    return json.dumps(canonical(change), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def change_of(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry's change as data: parsed from its text, or as stored by an entry written as a map. A text that
    is not a JSON object reads as no change (its entry's hash still has to match the text)."""
    change = entry.get("change")
    if isinstance(change, str):
        try:
            change = json.loads(change)
        except ValueError:
            return {}
    return change if isinstance(change, dict) else {}


def make_entry(seq: int, at: str, change: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    entry = {"seq": seq, "at": at, "change": change_text(change), "prev_hash": prev_hash}
    entry["hash"] = digest(entry)
    return entry


@dataclass
class Change:
    """One write to a notice, as data: turned into an update expression and replayed by `verify`."""

    what: str
    ops: list[list[Any]] = field(default_factory=list)

    def set(self, path: str | Path, value: Any) -> Change:
        self.ops.append(["set", list(_path(path)), value])
        return self

    def set_if_absent(self, path: str | Path, value: Any) -> Change:
        self.ops.append(["set_if_absent", list(_path(path)), value])
        return self

    def append(self, path: str | Path, values: list[Any]) -> Change:
        self.ops.append(["append", list(_path(path)), list(values)])
        return self

    def add(self, path: str | Path, value: Any) -> Change:
        """A number added to (absent: 0), or a set unioned with (absent: empty)."""
        self.ops.append(["add", list(_path(path)), value])
        return self

    def remove(self, path: str | Path) -> Change:
        self.ops.append(["remove", list(_path(path)), None])
        return self

    def sets(self, name: str) -> bool:
        return any(op[0] in ("set", "set_if_absent") and op[1] == [name] for op in self.ops)

    def record(self) -> dict[str, Any]:
        """The change as data, for its chain entry (written as canonical text) and for `apply`, which copies what
        it takes: the operations are not copied again here."""
        return {"what": self.what, "ops": self.ops}

    def expression(self, extra_set: list[str] | None = None) -> tuple[str, dict[str, str], dict[str, Any]]:
        """UpdateExpression, names (#u*) and values (:u*) for these operations, plus `extra_set` clauses."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses: dict[str, list[str]] = {"SET": list(extra_set or []), "ADD": [], "REMOVE": []}

        def path_text(path: list[Any]) -> str:
            text = ""
            for part in path:
                if isinstance(part, int):
                    text += f"[{part}]"
                    continue
                placeholder = next((k for k, v in names.items() if v == part), None)
                if placeholder is None:
                    placeholder = f"#u{len(names)}"
                    names[placeholder] = part
                text += ("." if text else "") + placeholder
            return text

        def value(v: Any) -> str:
            placeholder = f":u{len(values)}"
            values[placeholder] = v
            return placeholder

        for kind, path, operand in self.ops:
            target = path_text(path)
            if kind == "set":
                clauses["SET"].append(f"{target} = {value(operand)}")
            elif kind == "set_if_absent":
                clauses["SET"].append(f"{target} = if_not_exists({target}, {value(operand)})")
            elif kind == "append":
                clauses["SET"].append(f"{target} = list_append(if_not_exists({target}, {value([])}), "
                                      f"{value(operand)})")
            elif kind == "add":
                clauses["ADD"].append(f"{target} {value(operand)}")
            else:
                clauses["REMOVE"].append(target)
        text = " ".join(f"{clause} {', '.join(parts)}" for clause, parts in clauses.items() if parts)
        return text, names, values


def _path(path: str | Path) -> Path:
    return (path,) if isinstance(path, str) else tuple(path)


def apply(doc: dict[str, Any], change: dict[str, Any]) -> None:
    """Replay one recorded change on `doc`, with DynamoDB's semantics for each operation."""
    if "item" in change:  # the item as first written
        doc.clear()
        doc.update(copy.deepcopy(change["item"]))
        return
    for kind, path, operand in change.get("ops", []):
        parent = doc
        for part in path[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        key = int(path[-1]) if isinstance(parent, list) else path[-1]
        present = (key < len(parent)) if isinstance(parent, list) else key in parent
        if kind == "set":
            _put(parent, key, copy.deepcopy(operand))
        elif kind == "set_if_absent":
            if not present:
                _put(parent, key, copy.deepcopy(operand))
        elif kind == "append":
            _put(parent, key, list(parent[key] if present else []) + copy.deepcopy(list(operand)))
        elif kind == "add":
            if isinstance(operand, set | frozenset | list):  # a set (a list once read back from the entry's text)
                _put(parent, key, set(parent[key] if present else set()) | set(operand))
            else:
                _put(parent, key, Decimal(parent[key] if present else 0) + Decimal(operand))
        elif kind == "remove" and present:
            del parent[key]


def _put(parent: Any, key: Any, value: Any) -> None:
    if isinstance(parent, list) and key == len(parent):
        parent.append(value)
    else:
        parent[key] = value


@dataclass
class Problem:
    notification_id: str
    seq: int | None  # the chain entry at fault, when one is
    what: str

    def __str__(self) -> str:
        where = f" entry {self.seq}" if self.seq is not None else ""
        return f"notice {self.notification_id}{where}: {self.what}"


def verify(item: dict[str, Any]) -> list[Problem]:
    """Every problem with one ledger item's chain: hashes, links, the head, and the item against its replay."""
    notice = str(item.get("notification_id", "?"))
    entries = item.get("chain")
    if not entries:
        return [Problem(notice, None, "has no hash chain")]
    problems: list[Problem] = []
    previous = GENESIS
    doc: dict[str, Any] = {}
    for position, entry in enumerate(entries, start=1):
        seq = int(entry.get("seq", -1))
        if seq != position:
            problems.append(Problem(notice, position, f"carries seq {seq}: an entry was removed or reordered"))
        if entry.get("prev_hash") != previous:
            problems.append(Problem(notice, position, "does not link to the entry before it (prev_hash differs)"))
        if digest(entry) != entry.get("hash"):
            problems.append(Problem(notice, position, f"was edited: its hash no longer matches its content "
                                                      f"({change_of(entry).get('what', '?')})"))
        previous = str(entry.get("hash"))
        try:
            apply(doc, change_of(entry))
        except Exception as err:  # noqa: BLE001 - an entry of any shape is reported, never raised: verify must finish
            problems.append(Problem(notice, position, f"cannot be replayed ({err!r})"))
    if item.get("chain_head") != previous or int(item.get("chain_seq", 0)) != len(entries):
        problems.append(Problem(notice, None, "chain head or length differs from its last entry"))
    stored = {k: v for k, v in item.items() if k not in CHAIN_ATTRIBUTES}
    for name in sorted(set(stored) | set(doc)):
        if canonical(stored.get(name)) != canonical(doc.get(name)):
            last = next((e for e in reversed(entries) if _touches(change_of(e), name)), None)
            problems.append(Problem(notice, int(last["seq"]) if last else None,
                                    f"attribute '{name}' differs from what the chain recorded"
                                    + (" (last written by this entry)" if last else "")))
    return problems


def _touches(change: dict[str, Any], name: str) -> bool:
    """Whether a recorded change wrote attribute `name` (an op of any other shape, as a forged entry may hold,
    writes nothing)."""
    if "item" in change:
        return isinstance(change["item"], dict) and name in change["item"]
    ops = change.get("ops")
    return isinstance(ops, list) and any(isinstance(op, list) and len(op) == 3 and isinstance(op[1], list)
                                         and op[1] and op[1][0] == name for op in ops)
