"""YAML loading that remembers where every value came from (file:line:column)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import yaml

from service.domain.schema import MISSING_FIELD
from service.errors import Problem

Key = tuple[str | int, ...]


class Mark(msgspec.Struct, frozen=True):
    line: int  # 1-based
    column: int  # 1-based
    style: str | None = None  # the scalar's YAML style: None (plain), "'", '"', "|", ">"


class Source(msgspec.Struct, frozen=True):
    """A parsed YAML document with the position of each value and each key."""

    file: str
    data: Any
    values: dict[Key, Mark]
    keys: dict[Key, Mark]
    lines: tuple[str, ...] = ()

    def problem(self, key: Key, reason: str, *, at_key: bool = False, severity: str = "error") -> Problem:
        mark = self.locate(key, at_key=at_key)
        return Problem(reason, path=dotted(key), file=self.file, line=mark.line, column=mark.column, severity=severity)

    def locate(self, key: Key, *, at_key: bool = False) -> Mark:
        """The closest known position for ``key``, walking up to its parents."""
        table = self.keys if at_key else self.values
        while key:
            if key in table:
                return table[key]
            key = key[:-1]
            table = self.values
        return Mark(1, 1)

    def expression_mark(self, key: Key, offset: int) -> Mark:
        """Position of character ``offset`` inside the scalar at ``key``."""
        mark = self.locate(key)
        if mark.style in ("|", ">"):
            return self._block_mark(mark.line + 1, offset)
        quote = 1 if mark.style in ("'", '"') else 0
        return Mark(mark.line, mark.column + quote + offset)

    def _block_mark(self, first_line: int, offset: int) -> Mark:
        """Walk a block scalar's lines: each adds its text plus one joining character."""
        number = first_line
        while number <= len(self.lines):
            text = self.lines[number - 1]
            content = text.strip()
            if offset <= len(content):
                return Mark(number, len(text) - len(text.lstrip()) + offset + 1)
            offset -= len(content) + 1
            number += 1
        return Mark(first_line, 1)


def dotted(key: Key) -> str:
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def load(text: str, file: str) -> Source:
    """Parse ``text``; raises a located Problem on a YAML syntax error."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = Problem(f"YAML syntax: {error.problem or error}", file=file, line=line, column=column)
        raise _SyntaxError(problem) from None
    finally:
        loader.dispose()
    values: dict[Key, Mark] = {}
    keys: dict[Key, Mark] = {}
    if node is not None:
        _walk(node, (), values, keys)
    return Source(file, data, values, keys, tuple(text.splitlines()))


class _SyntaxError(Exception):
    """A YAML syntax problem found while loading: outside the error tree on purpose, it only carries
    the located Problem to the loader, which gathers every problem into one RulesetInvalid."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


SyntaxProblem = _SyntaxError


def _mark(node: yaml.Node) -> Mark:
    style = getattr(node, "style", None)
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1, style)


def _walk(node: yaml.Node, key: Key, values: dict[Key, Mark], keys: dict[Key, Mark]) -> None:
    values[key] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*key, str(key_node.value))
            keys[child] = _mark(key_node)
            _walk(value_node, child, values, keys)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*key, index), values, keys)


_MSGSPEC_PATH = re.compile(r"`\$((?:\.[^.\[`]+|\[\d+\]|\[\.\.\.\])*)`")
_ANY = "[...]"  # msgspec's name for "a value of this mapping", whatever its key


def validation_problem(source: Source, error: msgspec.ValidationError) -> Problem:
    """Turn a msgspec error ("... - at `$.rules[0].then`") into a located Problem."""
    message = str(error)
    reason, _, where = message.rpartition(" - at ")
    match = _MSGSPEC_PATH.search(where) if reason else None
    pattern = parse_path(match.group(1)) if match else ()
    unknown = re.match(r"Object contains unknown field `([^`]+)`", reason or message)
    if unknown:
        # msgspec stops at the first error in document order, so the first entry with this key is the one.
        keys = _matching(source.keys, (*pattern, unknown.group(1)))
        key = keys[0] if keys else (*pattern, unknown.group(1))
        return source.problem(key, f"unknown key {unknown.group(1)!r}", at_key=True)
    return source.problem(_resolve(source, pattern, reason or message), reason or message)


def _resolve(source: Source, pattern: Key, reason: str) -> Key:
    """The key ``pattern`` (with ``[...]`` wildcards) names: the first entry whose value fits the reason.

    When no value can be told apart, the mapping that holds the wildcard is named
    instead: a position that is less precise but never wrong.
    """
    if _ANY not in pattern:
        return pattern
    keys = _matching(source.values, pattern)
    if len(keys) > 1:
        keys = [key for key in keys if _explains(reason, _value_at(source.data, key))]
    return keys[0] if keys else pattern[: pattern.index(_ANY)]


def _matching(table: dict[Key, Mark], pattern: Key) -> list[Key]:
    """Keys of ``table`` that ``pattern`` names, in document order."""
    found = [
        key
        for key in table
        if len(key) == len(pattern) and all(p in (_ANY, k) for p, k in zip(pattern, key, strict=True))
    ]
    return sorted(found, key=lambda key: (table[key].line, table[key].column))


_MSGSPEC_TYPES = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    type(None): "null",
    list: "array",
    dict: "object",
}


def _explains(reason: str, value: Any) -> bool:
    """Whether ``value`` is what msgspec's ``reason`` is about (a missing field, "got `str`", a bad enum value)."""
    missing = MISSING_FIELD.match(reason)
    if missing:
        return isinstance(value, dict) and missing.group(1) not in value
    got = re.search(r"got `(\w+)`", reason)
    if got:
        return _MSGSPEC_TYPES.get(type(value)) == got.group(1)
    enum = re.search(r"Invalid enum value (.+)$", reason)
    return enum is not None and enum.group(1) == (repr(value) if isinstance(value, str) else str(value))


def _value_at(data: Any, key: Key) -> Any:
    for part in key:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def parse_path(text: str) -> Key:
    parts: list[str | int] = []
    for name, index, anything in re.findall(r"\.([^.\[]+)|\[(\d+)\]|(\[\.\.\.\])", text):
        parts.append(int(index) if index else (anything or name))
    return tuple(parts)
