"""What may come over the wire: JSON decoded with bounded depth, and records checked for values
no instance can store (lone surrogates, integers beyond 64 bits, NaN, deep nesting).

A push body is decoded once; each record in it is then checked on its own, so one record that
no database could hold is refused by itself and the records beside it are still stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deeper than any record kind needs (a correction's changes are two levels below `data`).
MAX_DEPTH = 16
# SQLite's and PostgreSQL's bigint.
MAX_INT = 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNPRINTABLE = re.compile("[\x00\ud800-\udfff]")


class TooDeep:
    """Stands in for a value nested deeper than the decoder keeps."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<too deep>"


TOO_DEEP = TooDeep()


def decode(raw: bytes | str) -> Any:
    """The JSON value of raw, as json.loads reads it; ValueError if it is not JSON.

    json.loads recurses once per level and gives up near a thousand; a body nested deeper is
    read again by a loop that keeps MAX_DEPTH + 4 levels (body, records, a record, its data…)
    and replaces what lies below with TOO_DEEP, so the record holding it can be refused alone.
    """
    text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    try:
        return json.loads(text)
    except RecursionError:
        return _decode_capped(text, MAX_DEPTH + 4)


_TOKEN = re.compile(
    r"""[ \t\n\r]*(?:
        (?P<open>[\[{]) | (?P<close>[\]}]) | (?P<colon>:) | (?P<comma>,)
      | (?P<string>"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")
      | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
      | (?P<word>true|false|null|NaN|Infinity|-Infinity)
    )""",
    re.VERBOSE,
)
_WORDS = {
    "true": True,
    "false": False,
    "null": None,
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
}


def _decode_capped(text: str, cap: int) -> Any:
    """json.loads without recursion: containers below depth cap become TOO_DEEP."""
    stack: list[Any] = []  # the open containers being built
    keys: list[Any] = []  # per open dict, the key whose value comes next
    skipped = 0  # levels inside a container too deep to keep
    result: Any = None
    state = "value"  # what may come next: value, value|close, key, key|close, colon, comma|close
    pos = 0

    def put(value: Any) -> str:
        nonlocal result
        if not stack:
            result = value
            return "end"
        if isinstance(stack[-1], list):
            stack[-1].append(value)
        else:
            stack[-1][keys[-1]] = value
        return "comma|close"

    while True:
        m = _TOKEN.match(text, pos)
        if m is None:
            if state == "end" and not text[pos:].strip(" \t\n\r"):
                return result
            raise ValueError("not JSON")
        pos = m.end()
        kind = m.lastgroup
        if skipped:  # only the brackets count inside a container we do not keep
            if kind == "open":
                skipped += 1
            elif kind == "close":
                skipped -= 1
                if not skipped:
                    state = put(TOO_DEEP)
            continue
        if kind == "open" and state in ("value", "value|close"):
            if len(stack) >= cap:
                skipped = 1
                continue
            is_list = m.group("open") == "["
            stack.append([] if is_list else {})
            keys.append(None)
            state = "value|close" if is_list else "key|close"
        elif kind == "close" and state in ("value|close", "key|close", "comma|close"):
            if (m.group("close") == "]") != isinstance(stack[-1], list):
                raise ValueError("unbalanced JSON")
            keys.pop()
            state = put(stack.pop())
        elif kind == "string" and state in ("key", "key|close"):
            keys[-1] = json.loads(m.group("string"))
            state = "colon"
        elif kind in ("string", "number", "word") and state in ("value", "value|close"):
            token = m.group(kind)
            state = put(_WORDS[token] if kind == "word" else json.loads(token))
        elif kind == "colon" and state == "colon":
            state = "value"
        elif kind == "comma" and state == "comma|close":
            state = "value" if isinstance(stack[-1], list) else "key"
        else:
            raise ValueError("not JSON")


def problem(value: Any) -> str | None:
    """Why a decoded record cannot be stored as it is, or None: 'deep', 'text' (a lone
    surrogate), 'nul' (U+0000, which PostgreSQL's text cannot hold: an id that holds one is no
    id on either engine, or a SQLite tier would pass on what a PostgreSQL one cannot store),
    'number' (beyond 64 bits, NaN or infinite). Walks without recursion."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        kind = type(item)
        if kind is str:
            if _SURROGATE.search(item):
                return "text"
            if "\x00" in item:
                return "nul"
        elif kind is dict:
            if depth >= MAX_DEPTH:
                return "deep"
            for key, sub in item.items():
                if type(key) is not str or _SURROGATE.search(key):
                    return "text"
                if "\x00" in key:
                    return "nul"
                todo.append((sub, depth + 1))
        elif kind is list:
            if depth >= MAX_DEPTH:
                return "deep"
            todo.extend((sub, depth + 1) for sub in item)
        elif kind is int:
            if not -MAX_INT - 1 <= item <= MAX_INT:
                return "number"
        elif kind is float:
            if not math.isfinite(item):
                return "number"
        elif item is TOO_DEEP:
            return "deep"
    return None


def printable(text: str) -> str:
    """Text as it can be stored and shown: a lone surrogate or a NUL becomes U+FFFD (a refusal's
    reason may quote what the record held; PostgreSQL's text holds no NUL)."""
    return _UNPRINTABLE.sub("\ufffd", text)


def dump_for_review(value: Any, limit: int = 100_000) -> str:
    """A refused record as text a person can read, whatever it holds (never raises)."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
        text.encode("utf-8")  # a lone surrogate cannot be stored as UTF-8
    except (RecursionError, UnicodeEncodeError, ValueError, TypeError):
        try:
            text = json.dumps(value, ensure_ascii=True, sort_keys=True, default=repr)
        except (RecursionError, ValueError, TypeError):
            return "(a record nested too deep to show)"
    return text[:limit]
