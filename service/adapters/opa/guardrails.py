"""Guardrails: the verdict client.  It asks OPA, the supervised child of
service/adapters/opa/process.py or an external OPA named by URL, for a verdict per decision.

Every query has a timeout; any failure yields ``Verdict(available=False)``, which
the decision turns into an escalation (fail closed).  A circuit breaker
(service/adapters/opa/breaker.py) sits in front of the queries: while it is open, verdicts
are unavailable at once, without asking OPA.  ``opa_url`` names an external OPA
(a sidecar) instead of the child; it gets the same breaker and health checks
(but no restarts).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec

from service.adapters.opa.batch import MicroBatcher
from service.adapters.opa.binary import find_opa
from service.adapters.opa.breaker import OPEN, CircuitBreaker
from service.adapters.opa.client import OpaHttpClient, encode
from service.adapters.opa.process import HealthPolicy, OpaProcess, probe_health
from service.authoring.policies import PolicyBundle, location_key
from service.domain.decision import Verdict, Violation
from service.errors import GuardrailsUnavailable, OpaHttpError

__all__ = ["BATCH_QUERY", "BREAKER_OPEN", "DECISION_PATH", "Guardrails", "HealthPolicy"]

log = logging.getLogger("opsgate.guardrails")

DECISION_PATH = "/v1/data/opsgate/decision"
QUERY_PATH = "/v1/query"
# Several items go in one ad-hoc query that the service writes, never in a rule of rego/: each item
# gets exactly what data.opsgate.decision gives it alone (``[]`` where undefined, ``[verdict]``
# otherwise), so a verdict never depends on how requests were grouped.  Any ``batch`` rule rego/
# may define is never asked.
BATCH_QUERY = (
    "verdicts := [found | some item in input.items; found := [d | d := data.opsgate.decision with input as item]]"
)
NO_RESULT = "OPA returned no result (is the guardrails entrypoint loaded?)"


class _Answer(msgspec.Struct):
    result: Any = None


class _Bindings(msgspec.Struct):
    verdicts: list[list[Any]]


class _RawVerdict(msgspec.Struct, forbid_unknown_fields=True):
    """The entrypoint's verdict for one item: every field required, typed, nothing else."""

    allow: bool
    violations: list[Violation]
    requires_approval: bool
    approvals: list[Violation]


def decode_verdict(result: Any) -> _RawVerdict | str:
    """The verdict the entrypoint gave for one item (``None``: it gave none), or why it is not a
    verdict that can be acted on; the decision then fails closed."""
    if result is None:
        return NO_RESULT
    try:
        raw = msgspec.convert(result, _RawVerdict)
    except msgspec.ValidationError as error:
        return f"malformed guardrail verdict: {error}"
    if raw.allow == bool(raw.violations):
        return (
            f"inconsistent guardrail verdict: `allow` is {str(raw.allow).lower()} "
            f"with {len(raw.violations)} item(s) in `violations`"
        )
    if raw.approvals and not raw.requires_approval:
        return (
            "inconsistent guardrail verdict: `requires_approval` is false "
            f"with {len(raw.approvals)} item(s) in `approvals`"
        )
    return raw


_DECODE_ANSWER = msgspec.json.Decoder(_Answer)
BREAKER_OPEN = "OPA circuit breaker open: OPA not asked"
# the query timeout covers this many items; a larger batch gets proportionally longer
_ITEMS_PER_TIMEOUT = 100


class Guardrails:
    """Asks OPA for verdicts; never raises for an OPA failure, answers unavailable."""

    def __init__(
        self,
        opa_bin: str | None,
        timeout: float = 0.1,
        opa_url: str | None = None,
        restart_backoff: float = 0.2,
        batch_window: float = 0.0005,
        breaker: CircuitBreaker | None = None,
        health: HealthPolicy | None = None,
    ) -> None:
        self.timeout = timeout
        self.breaker = breaker or CircuitBreaker()
        self.health = health or HealthPolicy()
        self._batcher: MicroBatcher[dict[str, Any], Verdict] = MicroBatcher(self._send, batch_window)
        self.process = (
            None
            if opa_url
            # a restarted child that answers its health check is probed at once, not after the breaker's recovery
            else OpaProcess(opa_bin or find_opa(), restart_backoff, health=self.health, on_up=self.breaker.try_now)
        )
        self.client = OpaHttpClient(opa_url or self.process.address)  # type: ignore[union-attr]
        self.revision = ""
        self.bundle: PolicyBundle | None = None
        self._external_up = False
        self._watch: asyncio.Task[None] | None = None

    async def start(self, bundle: PolicyBundle, revision: str) -> None:
        self.bundle, self.revision = bundle, revision
        if self.process is not None:
            await self.process.start(bundle, revision)
        elif self._watch is None:  # an external OPA: watched, never restarted
            self._external_up = await self.healthy()
            self._watch = asyncio.get_running_loop().create_task(self._watch_external())

    @property
    def up(self) -> bool:
        """OPA answered its last periodic health check (the child: and is running)."""
        return self.process.up if self.process is not None else self._external_up

    async def healthy(self) -> bool:
        """A health check made now."""
        return await probe_health(self.client, max(self.timeout, 0.5))

    async def _watch_external(self) -> None:
        while True:
            await asyncio.sleep(self.health.interval_s)
            up = await probe_health(self.client, self.health.timeout_s)
            if up != self._external_up:
                log.warning("external OPA at %s is %s", self.client.address, "up" if up else "not answering")
                if up:
                    self.breaker.try_now()
            self._external_up = up

    @property
    def stats(self) -> dict[str, Any]:
        """Single decisions' OPA queries and the verdicts they carried (fewer queries: batching at work);
        POST /decide/batch queries are not counted here."""
        return {
            "window_ms": self._batcher.window_s * 1000,
            "queries": self._batcher.queries,
            "items": self._batcher.items,
        }

    def status(self) -> dict[str, Any]:
        """GET /ready's ``opa`` section: the supervised view, no query made."""
        process = self.process
        return {
            "up": self.up,
            "mode": "child" if process else "external",
            "pid": process.pid if process else None,
            "restarts": process.restarts if process else 0,
            "unhealthy_kills": process.unhealthy_kills if process else 0,
            "bundle_revision": self.revision,
            "breaker": msgspec.to_builtins(self.breaker.stats()),
            "micro_batching": self.stats,
        }

    async def check(self, item: dict[str, Any]) -> Verdict:
        """One verdict for ``{ruleset, facts, proposal}``; concurrent calls may share one OPA query."""
        try:
            return await self._batcher.submit(item)
        except Exception as error:  # noqa: BLE001 - fail closed whatever went wrong
            return self._unavailable(f"guardrail query failed: {error}", self.breaker.state)

    async def check_many(self, items: list[dict[str, Any]]) -> list[Verdict]:
        """The verdicts for ``items``, in order, from ONE query that evaluates ``decision`` for each item."""
        return await self._send(items) if items else []

    async def _send(self, items: list[dict[str, Any]]) -> list[Verdict]:
        """One OPA query for ``items`` through the breaker; a failed query makes every verdict
        unavailable (fail closed) and counts towards opening the breaker.  A verdict OPA gave but
        that is malformed fails its own item closed: OPA answered, so the breaker counts a success."""
        permit = self.breaker.admit()
        if permit is None:
            return [self._unavailable(BREAKER_OPEN, OPEN)] * len(items)
        try:
            results = await self._ask(items)
        except GuardrailsUnavailable as error:
            self.breaker.failed(permit)
            return [self._unavailable(str(error), permit.state)] * len(items)
        except Exception as error:  # noqa: BLE001 - anything else (a bad Content-Length...): fail closed too
            self.breaker.failed(permit)
            return [self._unavailable(f"guardrail query failed: {error!r}", permit.state)] * len(items)
        except BaseException:  # cancelled: no answer either way
            self.breaker.released(permit)
            raise
        self.breaker.succeeded(permit)
        if results is None:  # OPA refused the grouped query: each item is asked alone, as it would be
            return [verdict for one in await asyncio.gather(*(self._send([i]) for i in items)) for verdict in one]
        return [self._verdict(decode_verdict(result), permit.state) for result in results]

    async def _ask(self, items: list[dict[str, Any]]) -> list[Any] | None:
        """What the entrypoint gave for each item (``None`` where nothing); ``None`` for all when OPA
        answered the grouped query with an error (one item's evaluation failed, or the query is not
        allowed): one item's failure must not become its neighbours'."""
        if len(items) == 1:  # the plain entrypoint: no batch wrapping for a lone query
            status, body = await self._query(DECISION_PATH, {"input": items[0]}, self.timeout)
            return [_result(status, body)]
        timeout = self.timeout * max(1.0, len(items) / _ITEMS_PER_TIMEOUT)
        status, body = await self._query(QUERY_PATH, {"query": BATCH_QUERY, "input": {"items": items}}, timeout)
        if status != 200:
            return None
        try:
            found = msgspec.convert(_result(status, body), list[_Bindings])[0].verdicts
        except (msgspec.ValidationError, IndexError) as error:
            raise GuardrailsUnavailable(f"unexpected answer to the grouped query: {error}") from None
        if len(found) != len(items) or any(len(one) > 1 for one in found):
            raise GuardrailsUnavailable(f"OPA gave {len(found)} verdicts for {len(items)} items")
        return [one[0] if one else None for one in found]

    def _unavailable(self, error: str, breaker: str) -> Verdict:
        return Verdict(available=False, revision=self.revision, error=error, breaker=breaker)

    async def _query(self, path: str, payload: dict[str, Any], timeout: float) -> tuple[int, bytes]:
        query = encode(payload)
        try:
            # in this task, not a new one (wait_for's): the clock starts as the query is written, not
            # when a busy event loop gets round to starting a task that writes it
            async with asyncio.timeout(timeout):
                return await self.client.request(path, query)
        except TimeoutError:
            raise GuardrailsUnavailable(f"OPA did not answer within {timeout * 1000:g} ms") from None
        except OpaHttpError as error:
            raise GuardrailsUnavailable(str(error)) from None

    def _verdict(self, raw: _RawVerdict | str, breaker: str) -> Verdict:
        if isinstance(raw, str):
            return self._unavailable(raw, breaker)
        locations = self.bundle.locations if self.bundle else {}

        def located(v: Violation) -> Violation:
            where = locations.get(location_key(v.id, v.title)) or locations.get(v.id)
            return msgspec.structs.replace(v, location=where)

        return Verdict(
            available=True,
            allow=raw.allow,
            violations=[located(v) for v in raw.violations],
            requires_approval=raw.requires_approval,
            approvals=[located(v) for v in raw.approvals],
            revision=self.revision,
            breaker=breaker,
        )

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        await self._batcher.close()
        self.client.close()
        if self.process is not None:
            await self.process.stop()


def _result(status: int, body: bytes) -> Any:
    """The ``result`` of one OPA answer (``None`` when undefined); GuardrailsUnavailable unless a 200."""
    if status != 200:
        raise GuardrailsUnavailable(f"OPA answered {status}: {body[:300].decode(errors='replace')}")
    try:
        return _DECODE_ANSWER.decode(body).result
    except msgspec.DecodeError as error:
        raise GuardrailsUnavailable(f"OPA's answer could not be read: {error}") from None
