"""The executors file (YAML, docs/executors.md): one HTTP endpoint per action type, decoded strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from service.adapters.executors.http import HttpExecutor
from service.adapters.export.webhook import read_secret
from service.errors import InvalidSettings
from service.ports.executors import ExecutorConfig, ExecutorsConfig


def load_executors(path: Path) -> ExecutorsConfig:
    """The config at ``path``; InvalidSettings naming the file, the field and the reason."""
    try:
        raw = msgspec.yaml.decode(path.read_bytes())
        return msgspec.convert(raw, ExecutorsConfig)
    except OSError as error:
        raise InvalidSettings(f"executors config {path}: {error.strerror or error}") from None
    except msgspec.ValidationError as error:
        raise InvalidSettings(f"executors config {path}: {_located(error, raw)}") from None
    except msgspec.DecodeError as error:
        raise InvalidSettings(f"executors config {path}: not YAML: {error}") from None


def _located(error: msgspec.ValidationError, raw: Any) -> str:
    """The error with the action type it is about named (msgspec says ``$.executors[...]``)."""
    entries = raw.get("executors") if isinstance(raw, dict) else None
    if "`$.executors[...]" not in str(error) or not isinstance(entries, dict):
        return str(error)
    for name, entry in entries.items():
        try:
            msgspec.convert(entry, ExecutorConfig)
        except msgspec.ValidationError as inner:
            text, where = str(inner), f"$.executors.{name}"
            return text.replace("`$", f"`{where}", 1) if " - at `$" in text else f"{text} - at `{where}`"
    return str(error)


def build_executors(config: ExecutorsConfig, source: Path) -> dict[str, HttpExecutor]:
    """One executor per action type of the config read from ``source``; nothing connects yet.
    InvalidSettings naming the entry and the reason."""
    executors = {}
    for action_type, entry in config.executors.items():
        try:
            executors[action_type] = HttpExecutor(action_type, entry, read_secret(entry.secret_env, entry.secret_file))
        except InvalidSettings as error:
            message = error.message.removeprefix(f"executor {action_type!r}: ")
            raise InvalidSettings(f"executors config {source}: {message} - at `$.executors.{action_type}`") from None
    return executors
