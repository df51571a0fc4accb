"""Which engine chunks could fire for a fact: a sound pre-filter (pure: no engine import).

Each rule's compiled condition is read for *necessary equality tests*: a top-level
conjunct ``path == constant``, or a disjunction whose every branch tests the same
path for equality (what ``path in [..]`` compiles to).  Derived conditions are
tests like any other (``d.kN == true``).  Before a fact is asserted, a chunk is
kept if some rule in it passes all of its tests, or has none; the others cannot
fire and are skipped.

A test only says "cannot fire" where durable_rules' equality is known to agree
with Python's: numbers and booleans among themselves (``true == 1 == 1.0`` in
both), plain strings among themselves.  Everything else counts as "could fire":
a missing field, null, a list or object, a string against a number or boolean
(durable_rules compares those as text: ``"5" == 5``), integers beyond 2**53,
floats written with an exponent, strings with characters JSON escapes, and a
path that a dotted key of the facts could also spell (``{"a.b": ..}`` is
``a.b`` to durable_rules, as is ``{"a": {"b": ..}}``).  durable_rules finds a
field by a 32-bit hash of its name; like the rules themselves, the filter takes
the names of one fact to have distinct hashes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

JSON = dict[str, Any]

_SAFE_INT = 2**53
# JSON writes these floats without an exponent; the others reach durable_rules rewritten (engine.py): "could fire"
_PLAIN_FLOAT_MIN = 1e-4
_PLAIN_FLOAT_MAX = 1e16


class Equality(msgspec.Struct, frozen=True):
    """``path`` (in the asserted fact, e.g. ``("f", "process", "type")``) equals one of the constants."""

    path: tuple[str, ...]
    strings: frozenset[str] = frozenset()
    numbers: frozenset[int | float] = frozenset()  # booleans included: durable_rules compares them as 0/1


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_SAFE_INT <= value <= _SAFE_INT
    if isinstance(value, float):
        return value == 0 or _PLAIN_FLOAT_MIN <= abs(value) < _PLAIN_FLOAT_MAX
    return False


def _plain_string(value: Any) -> bool:
    return isinstance(value, str) and '"' not in value and "\\" not in value and all(c >= " " for c in value)


def _leaf(key: str, value: Any) -> Equality | None:
    if key.startswith("$") or isinstance(value, (dict, list)):
        return None
    path = tuple(key.split("."))
    if _number(value):
        return Equality(path, numbers=frozenset([value]))
    if _plain_string(value):
        return Equality(path, strings=frozenset([value]))
    return None


def necessary_tests(condition: JSON) -> list[Equality]:
    """Equality tests that hold whenever ``condition`` (durable_rules JSON) matches; [] if none are known."""
    if len(condition) != 1:
        return []
    ((key, value),) = condition.items()
    if key == "$and" and isinstance(value, list):
        return [test for part in value for test in necessary_tests(part)]
    if key == "$or" and isinstance(value, list) and value:
        return _common(necessary_tests(part) for part in value)
    test = _leaf(key, value)
    return [] if test is None else [test]


def _common(branches: Any) -> list[Equality]:
    """Per path tested in every branch, a test admitting what any branch admits."""
    merged: dict[tuple[str, ...], Equality] | None = None
    for tests in branches:
        first: dict[tuple[str, ...], Equality] = {}
        for test in tests:
            first.setdefault(test.path, test)
        if merged is None:
            merged = first
            continue
        merged = {
            path: Equality(path, test.strings | first[path].strings, test.numbers | first[path].numbers)
            for path, test in merged.items()
            if path in first
        }
    return list((merged or {}).values())


_UNKNOWN = object()


def _value(fact: Mapping[str, Any], path: tuple[str, ...], aliases: tuple[tuple[str, ...], ...]) -> Any:
    """The value at ``path``, or _UNKNOWN when it is absent or a dotted key could stand for it."""
    current: Any = fact
    for index, name in enumerate(path):
        if not isinstance(current, Mapping):
            return _UNKNOWN
        for alias in aliases[index]:
            if alias in current:
                return _UNKNOWN
        current = current.get(name, _UNKNOWN)
        if current is _UNKNOWN:
            return _UNKNOWN
    return current


def _aliases(path: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Per level of ``path``, the dotted keys that durable_rules would read as the rest of it."""
    return tuple(
        tuple(".".join(path[index:end]) for end in range(index + 2, len(path) + 1)) for index in range(len(path))
    )


class ChunkFilter:
    """For each fact, the indices of the chunks in which some rule could fire."""

    def __init__(self, chunks: Sequence[Sequence[JSON]]) -> None:
        rules: list[tuple[int, list[Equality]]] = []
        always: set[int] = set()
        for index, conditions in enumerate(chunks):
            for condition in conditions:
                tests = necessary_tests(condition)
                if tests:
                    rules.append((index, tests))
                else:
                    always.add(index)
        self.always = frozenset(always)
        constants: dict[tuple[str, ...], set[Any]] = {}
        for _, tests in rules:
            for test in tests:
                constants.setdefault(test.path, set()).update(test.strings, [(type(n), n) for n in test.numbers])
        # index each rule under its test on the path with the most distinct constants (the most selective)
        self._paths: dict[tuple[str, ...], _PathIndex] = {}
        for chunk, tests in rules:
            if chunk in always:
                continue
            key = max(tests, key=lambda t: (len(constants[t.path]), -len(t.strings) - len(t.numbers)))
            rest = tuple(t for t in tests if t is not key)
            self._paths.setdefault(key.path, _PathIndex()).add(key, chunk, rest)
        self._aliases = {t.path: _aliases(t.path) for chunk, tests in rules if chunk not in always for t in tests}

    def chunks(self, fact: Mapping[str, Any]) -> list[int]:
        """Ascending indices of the chunks to assert ``fact`` into (at least one, so unreadable facts still fail)."""
        needed = set(self.always)
        kinds = {path: _kind(_value(fact, path, aliases)) for path, aliases in self._aliases.items()}
        for path, by_path in self._paths.items():
            for chunk, rest in by_path.candidates(*kinds[path]):
                if chunk in needed:
                    continue
                for test in rest:
                    if not _admits(test, *kinds[test.path]):
                        break
                else:
                    needed.add(chunk)
        return sorted(needed) if needed else [0]


_STRING = "string"
_NUMBER = "number"


def _kind(value: Any) -> tuple[str | None, Any]:
    """How durable_rules' equality treats ``value``: as a string, as a number, or in a way not modelled (None)."""
    if value is _UNKNOWN:
        return None, value
    if isinstance(value, str):
        return _STRING, value
    if _number(value):
        return _NUMBER, value
    return None, value


def could_equal(test: Equality, value: Any) -> bool:
    """False only if durable_rules' ``==`` is false for ``value`` against every constant of ``test``."""
    return _admits(test, *_kind(value))


def _admits(test: Equality, kind: str | None, value: Any) -> bool:
    """``could_equal`` for a value already classified by ``_kind``."""
    if kind is _STRING:
        return bool(test.numbers) or value in test.strings
    if kind is _NUMBER:
        return bool(test.strings) or value in test.numbers
    return True


class _PathIndex:
    """Rules keyed by their constants on one path."""

    def __init__(self) -> None:
        self.by_string: dict[str, list[tuple[int, tuple[Equality, ...]]]] = {}
        self.by_number: dict[int | float, list[tuple[int, tuple[Equality, ...]]]] = {}
        self.with_strings: list[tuple[int, tuple[Equality, ...]]] = []  # candidates for any number (durable: "5" == 5)
        self.with_numbers: list[tuple[int, tuple[Equality, ...]]] = []  # candidates for any string
        self.every: list[tuple[int, tuple[Equality, ...]]] = []

    def add(self, test: Equality, chunk: int, rest: tuple[Equality, ...]) -> None:
        entry = (chunk, rest)
        self.every.append(entry)
        for text in test.strings:
            self.by_string.setdefault(text, []).append(entry)
        for number in test.numbers:
            self.by_number.setdefault(number, []).append(entry)
        if test.strings:
            self.with_strings.append(entry)
        if test.numbers:
            self.with_numbers.append(entry)

    def candidates(self, kind: str | None, value: Any) -> list[tuple[int, tuple[Equality, ...]]]:
        if kind is _STRING:
            return self.by_string.get(value, []) + self.with_numbers
        if kind is _NUMBER:
            return self.by_number.get(value, []) + self.with_strings
        return self.every
