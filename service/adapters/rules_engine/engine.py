"""The rule engine: the only module that imports durable_rules.

durable_rules' host is process-global C state and is not thread-safe, so this
module owns exactly one engine per process and runs every call into it on one
dedicated thread.  The traps it handles on purpose (see DESIGN.md):

- ``Host`` starts timer threads that run pending actions of any session; they
  can steal a decision's action so its result goes missing.  ``_QuietHost``
  never starts them.
- ``delete_state`` segfaults on a session in which no action ever ran, and
  sessions are capped at 1024: one long-lived session per engine ruleset is
  reused, each decision's fact asserted and then retracted.
- A built-in catch-all rule fires for every fact, which also proves that the
  decision's actions ran: if it did not fire, the result was lost and we raise.
- At most 64 rules may match one fact: rulesets are split into chunks.  Each
  assert and retract is a round trip through the Python host, so a fact is only
  asserted into the chunks in which some rule could fire (``service/adapters/rules_engine/prefilter.py``).
- Exceptions raised in actions are swallowed by durable_rules: our actions
  record them and ``match`` raises them.
- Its Python host encodes and decodes every fact, result and action state with the
  standard library's ``json`` (three encodings per assert and chunk: most of a
  decision's time at 1,000 rules).  ``_MsgspecJson`` stands in for that module: the
  same JSON (compact, UTF-8 rather than escaped, like ``ensure_ascii=False``) at a
  fraction of the cost.
- Its C parser reads an exponent only after a fraction: ``1e-06`` or ``1e+16`` stops at
  the ``e`` and the fact (or a rule's constant) is refused with error 204, as JSON
  writes 1e-6, 1e16 or 5e-324.  ``_MsgspecJson`` writes those as ``1.0e-06``; every
  finite float then reads back as the same double (glibc's ``atof`` rounds exactly).
- It reads integers as 64 bits (saturating beyond) and compares one with a double
  after converting it to a double: a fact holding an integer beyond 2**53 is not
  asserted, its rules' conditions are evaluated in Python (``_evaluate``).  The
  rules' own constants and arithmetic are kept exact by ``compile.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import msgspec
from durable import engine as durable  # type: ignore[import-untyped]

from service.adapters.rules_engine.compile import (
    DERIVED_KEY,
    FACTS_KEY,
    MATCH_ALL,
    SEQ_KEY,
    Compiled,
    compile_condition,
    exact,
)
from service.adapters.rules_engine.prefilter import ChunkFilter
from service.domain import expr
from service.domain.ruleset import Ruleset, nullable_paths
from service.errors import EngineError, ExpressionError

T = TypeVar("T")

#: Rules per engine ruleset: with the catch-all this stays under the 64-match cap.
CHUNK_SIZE = 60
#: Whether ``load`` builds the chunk pre-filter by default.
PREFILTER = True
_CATCH_ALL = "$opsgate-seen"
_SESSION = "0"


# Any exponent (a quick scan, from its literal "e"; a string such as "e2e" only costs the exact pass).
_EXPONENT = re.compile(rb"e(?=[-+]?[0-9])")
# The exact pass: strings are matched whole, so that the other matches are numbers whose exponent
# follows their integer digits (msgspec writes no spaces: a number starts the text or follows ":", "," or "[").
_STRING_OR_BARE_MANTISSA = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|(?<![^:,\[])-?[0-9]+(?=e)')


def _with_fraction(match: re.Match[bytes]) -> bytes:
    token = match.group()
    return token if token.startswith(b'"') else token + b".0"


class _MsgspecJson:
    """The two calls durable_rules' host makes of ``json``, answered by msgspec."""

    _encoder = msgspec.json.Encoder()

    @classmethod
    def dumps(cls, value: Any, ensure_ascii: bool = True) -> str:  # noqa: ARG003 - always UTF-8, as the host asks
        text = cls._encoder.encode(value)
        if _EXPONENT.search(text):  # durable_rules refuses 1e-6: give each such mantissa a fraction
            text = _STRING_OR_BARE_MANTISSA.sub(_with_fraction, text)
        return text.decode()

    loads = staticmethod(msgspec.json.decode)


durable.json = _MsgspecJson


class _QuietHost(durable.Host):  # type: ignore[misc]
    """A host without the self-rearming dispatch timers."""

    def _run(self) -> None:
        return None


class LoadedRuleset(msgspec.Struct, frozen=True):
    """A ruleset registered in the engine: its engine ruleset names per chunk."""

    ruleset: Ruleset
    chunks: tuple[str, ...]
    derived: tuple[tuple[str, expr.Node], ...]
    prefilter: ChunkFilter | None = None


class RuleEngine:
    """Matches facts against compiled rules; returns the ids of every rule that fired."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsgate-rules")
        self._names = itertools.count()
        self._seq = itertools.count()
        self._fired: list[str] = []
        self._errors: list[str] = []
        self._host: Any = self._run(_QuietHost)

    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if threading.current_thread().name.startswith("opsgate-rules"):
            return fn(*args)
        return self._thread.submit(fn, *args).result()

    async def _run_async(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self._thread.submit(fn, *args))

    def load(self, ruleset: Ruleset, prefilter: bool | None = None) -> LoadedRuleset:
        """Compile ``ruleset``'s conditions and register them under fresh engine names (old versions stay usable).

        ``prefilter`` (default ``PREFILTER``): skip, per fact, the chunks in which no rule can fire."""
        compiled = _compile_rules(ruleset)
        return self._run(self._load, ruleset, compiled, PREFILTER if prefilter is None else prefilter)

    def match(self, loaded: LoadedRuleset, facts: dict[str, Any]) -> list[str]:
        return self._run(self._match, loaded, facts)

    async def match_many_async(
        self, loaded: LoadedRuleset, items: list[dict[str, Any]]
    ) -> list[list[str] | EngineError]:
        """Each item matched in turn, in one hop to the engine thread; a failing item is its error."""
        return await self._run_async(self._match_each, loaded, items)

    # --- on the engine thread -------------------------------------------------

    def _load(self, ruleset: Ruleset, compiled: tuple[Compiled, ...], prefilter: bool) -> LoadedRuleset:
        rules = ruleset.rules
        names: list[str] = []
        starts = range(0, len(rules), CHUNK_SIZE)
        for start in starts:
            name = f"{ruleset.name}-{ruleset.version[:12]}-{next(self._names)}"
            chunk = zip(rules[start : start + CHUNK_SIZE], compiled[start : start + CHUNK_SIZE], strict=True)
            definition = {rule.id: self._definition(rule.id, condition) for rule, condition in chunk}
            definition[_CATCH_ALL] = {"all": [{"m": MATCH_ALL}], "run": self._record(_CATCH_ALL)}
            try:
                self._host.set_rulesets({name: definition})
            except Exception as error:  # the C engine rejects what it cannot compile
                raise EngineError(f"durable_rules rejected ruleset {ruleset.name!r}: {error}") from error
            names.append(name)
        derived = tuple(item for condition in compiled for item in condition.derived)
        chunk_filter = None
        if prefilter and len(names) > 1:
            chunk_filter = ChunkFilter([[c.condition for c in compiled[s : s + CHUNK_SIZE]] for s in starts])
        return LoadedRuleset(ruleset, tuple(names), derived, chunk_filter)

    def _definition(self, rule_id: str, condition: Compiled) -> dict[str, Any]:
        return {"all": [{"m": condition.condition}], "run": self._record(rule_id)}

    def _record(self, rule_id: str) -> Callable[[Any], None]:
        def action(_closure: Any) -> None:
            try:
                self._fired.append(rule_id)
            except BaseException as error:  # durable_rules would swallow it
                self._errors.append(f"{rule_id}: {error!r}")
                raise

        return action

    def fact(self, loaded: LoadedRuleset, facts: dict[str, Any]) -> dict[str, Any]:
        """The engine fact a decision's ``facts`` are asserted as (what the pre-filter reads)."""
        seq = next(self._seq)
        return {
            "sid": _SESSION,
            "id": str(seq),
            SEQ_KEY: seq,
            FACTS_KEY: facts,
            DERIVED_KEY: self._derive(loaded, facts),
        }

    def _match(self, loaded: LoadedRuleset, facts: dict[str, Any]) -> list[str]:
        if not exact(facts):
            return self._evaluate(loaded, facts)
        fact = self.fact(loaded, facts)
        fired: list[str] = []
        if loaded.prefilter is None:
            for name in loaded.chunks:
                fired.extend(self._assert(name, fact))
        else:
            for index in loaded.prefilter.chunks(fact):
                fired.extend(self._assert(loaded.chunks[index], fact))
        return fired

    def _match_each(self, loaded: LoadedRuleset, items: list[dict[str, Any]]) -> list[list[str] | EngineError]:
        matched: list[list[str] | EngineError] = []
        for facts in items:
            try:
                matched.append(self._match(loaded, facts))
            except EngineError as error:  # the other items of a batch still decide
                matched.append(error)
        return matched

    def _derive(self, loaded: LoadedRuleset, facts: dict[str, Any]) -> dict[str, bool]:
        if not loaded.derived:
            return {}
        scope = {**facts, "params": loaded.ruleset.params}
        try:
            return {key: bool(expr.evaluate(node, scope)) for key, node in loaded.derived}
        except Exception as error:
            raise EngineError(f"evaluating a condition failed: {error}") from error

    @staticmethod
    def _evaluate(loaded: LoadedRuleset, facts: dict[str, Any]) -> list[str]:
        """The rules whose conditions hold, evaluated in Python (for facts the engine cannot compare exactly)."""
        scope = {**facts, "params": loaded.ruleset.params}
        try:
            return [rule.id for rule in loaded.ruleset.rules if expr.evaluate(rule.when, scope)]
        except Exception as error:
            raise EngineError(f"evaluating a condition failed: {error}") from error

    def _assert(self, name: str, fact: dict[str, Any]) -> list[str]:
        self._fired.clear()
        self._errors.clear()
        try:
            self._host.assert_fact(name, fact)
        except Exception as error:
            raise EngineError(f"durable_rules assert failed: {error!r}") from error
        finally:
            self._retract(name, fact)
        if self._errors:
            raise EngineError("rule action failed: " + "; ".join(self._errors))
        if _CATCH_ALL not in self._fired:
            raise EngineError("durable_rules lost this decision's result (the catch-all rule did not run)")
        return [rule_id for rule_id in self._fired if rule_id != _CATCH_ALL]

    def _retract(self, name: str, fact: dict[str, Any]) -> None:
        try:
            self._host.retract_fact(name, fact)
        except Exception as error:
            raise EngineError(f"durable_rules retract failed: {error!r}") from error

    def session_facts(self, loaded: LoadedRuleset) -> list[Any]:
        """Facts left in the reused sessions (empty between decisions)."""
        return self._run(lambda: [f for name in loaded.chunks for f in self._host.get_facts(name, _SESSION)])


def _compile_rules(ruleset: Ruleset) -> tuple[Compiled, ...]:
    """Each rule's condition as durable_rules JSON, its derived keys unique per rule (``r<order>_``)."""
    nullable = frozenset(nullable_paths(ruleset.facts))
    try:
        return tuple(compile_condition(r.when, ruleset.params, f"r{r.order}_", nullable) for r in ruleset.rules)
    except ExpressionError as error:  # a built ruleset never gets here: its builder folded every condition
        raise EngineError(f"ruleset {ruleset.name!r}: a condition could not be compiled: {error}") from error


_ENGINE: RuleEngine | None = None
_ENGINE_LOCK = threading.Lock()


def shared_engine() -> RuleEngine:
    """The process's one engine (durable_rules' host is process-global C state)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = RuleEngine()
        return _ENGINE
