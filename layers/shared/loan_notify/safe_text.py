"""Borrower-controlled values in ops-facing text: quoted in suggested commands, escaped for terminals.

A value that reaches an alert, a suggested command or the ops CLI's output may have been typed by anyone with an
account. In a command it is shell-quoted (pasting the command runs it with the value as one argument, never as
code); on a terminal every control or format character (escape sequences, carriage returns, bidirectional
overrides) is shown as a visible escape, so it can neither clear the screen nor forge a line.
"""

from __future__ import annotations

import shlex
import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def shell_quote(value: object) -> str:
    """One shell word, whatever the value holds (shlex.quote), with control characters made visible first."""
    return shlex.quote(printable(value))


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """The value as text with every control (Cc), format (Cf), separator (Zl, Zp) and unassigned character
    replaced by a visible escape. `keep_newlines` keeps "\\n" as a line break (multi-line output we built)."""
    text = value if isinstance(value, str) else str(value)
    out = []
    for char in text:
        if keep_newlines and char == "\n":
            out.append(char)
        elif char == "\\" or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)
