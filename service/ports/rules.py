"""The rule engine port: what deciding needs of the engine that matches facts against rules."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from service.domain.ruleset import Ruleset
from service.errors import EngineError

# The engine's handle of a loaded ruleset; opaque to its callers, who only hand it back.
Loaded = TypeVar("Loaded")


class RuleEngine(Protocol[Loaded]):
    """Loads a ruleset once, then matches facts against it (the ids of every rule that fired)."""

    def load(self, ruleset: Ruleset) -> Loaded: ...

    async def match_many_async(self, loaded: Loaded, items: list[dict[str, Any]]) -> list[list[str] | EngineError]:
        """Each item's fired rule ids, in order; a failing item is its error."""
        ...
