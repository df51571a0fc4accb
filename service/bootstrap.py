"""The composition root: the one place that builds the real adapters from Settings.

Every entry point gets its adapters here: ``serve`` (service/http/app.py) and ``decide`` a
``Running`` from ``start``; ``test``, ``replay``, shadow and case capture their candidates and
decision log.  The rules engine is durable_rules' process-global host, so there is one per
process; each running version (served or candidate) gets a guardrails client of its own, with
the circuit breaker, health checks and batching the settings ask for.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from pathlib import Path

from service import heap
from service.adapters.attest.files import CheckpointFiles
from service.adapters.attest.signing import load_signer
from service.adapters.context import HttpContextFetcher
from service.adapters.executors.config import build_executors, load_executors
from service.adapters.export.config import build_sinks, load_export_config
from service.adapters.gitinfo import last_commit
from service.adapters.metrics import Metrics
from service.adapters.opa.binary import find_opa
from service.adapters.opa.breaker import CircuitBreaker
from service.adapters.opa.guardrails import Guardrails, HealthPolicy
from service.adapters.opa.tools import (
    check_policies,
    require_passing_policy_tests,
    require_valid_policies,
    run_policy_tests,
)
from service.adapters.redaction_key import load_redaction_key, required_redaction_key
from service.adapters.rules_engine.engine import RuleEngine, shared_engine
from service.adapters.store import Timeouts
from service.adapters.store import open_log as open_store
from service.adapters.tracing import tracer as open_tracer
from service.authoring.catalog import Catalog, load_catalog
from service.authoring.policies import PolicyTests
from service.domain.limits import JsonLimits
from service.errors import Problem, RulesetInvalid
from service.ports.executors import ExecutorsConfig
from service.ports.guardrails import PolicyCheck
from service.ports.log import Log
from service.ports.tracing import NO_TRACER, Tracer
from service.settings import Settings, checkpoints_path
from service.usecases.candidate import CANDIDATE_OPA_TIMEOUT_S, Candidates
from service.usecases.checkpoints import Checkpointer, Proofs
from service.usecases.context import ContextBuilder
from service.usecases.executors import Deliverer
from service.usecases.export import Exporter
from service.usecases.serving import Runtime
from service.usecases.shadow import Shadow
from service.usecases.versions import RunningVersion

log = logging.getLogger("opsgate")


def engine() -> RuleEngine:
    """The process's one rules engine (durable_rules' host is process-global C state)."""
    return shared_engine()


def guardrails(settings: Settings, *, timeout: float | None = None, own_child: bool = False) -> Guardrails:
    """A guardrails client as ``settings`` configure it: ``timeout`` (default: the OPA timeout)
    per query; ``own_child``: always an OPA child, never the external ``opa_url``."""
    return Guardrails(
        settings.opa_bin,
        timeout=settings.opa_timeout_ms / 1000 if timeout is None else timeout,
        opa_url=None if own_child else settings.opa_url,
        restart_backoff=settings.opa_restart_backoff_s,
        batch_window=settings.opa_batch_window_ms / 1000,
        breaker=CircuitBreaker(
            settings.opa_breaker_failures, settings.opa_breaker_recovery_s, settings.opa_breaker_probes
        ),
        health=HealthPolicy(settings.opa_health_interval_s, settings.opa_unhealthy_restart_s),
    )


def policy_check(settings: Settings) -> PolicyCheck:
    """``opa check --strict`` over a rego directory, as a gate, with the settings' opa binary."""
    return functools.partial(require_valid_policies, settings.opa_bin)


def candidates(settings: Settings, timeout: float = CANDIDATE_OPA_TIMEOUT_S) -> Candidates:
    """Candidate versions (shadow, replay, ``opsgate test``), each with its own OPA child: never the
    external OPA, which holds the served policies; ``timeout`` per guardrail query."""

    def own_guardrails(query_timeout: float) -> Guardrails:
        return guardrails(settings, timeout=query_timeout, own_child=True)

    return Candidates(engine, own_guardrails, policy_check(settings), timeout)


def open_log(
    settings: Settings, writer: str | None = None, *, read_only: bool = False, executors: ExecutorsConfig | None = None
) -> Log:
    """The decision log of ``settings.db``, written as ``writer`` (default: the settings' writer id), queueing
    the action types of ``executors`` (the executors file, read here when not given and ``settings`` names one)."""
    timeouts = Timeouts(connect_s=settings.db_connect_timeout_s, statement_s=settings.db_statement_timeout_s,
                        write_s=settings.db_write_timeout_s, keepalive_s=settings.db_keepalive_s)  # fmt: skip
    # the action types approved decisions queue for executors: none for a reader, which never appends
    if read_only:
        executors = None
    elif executors is None and settings.executors is not None:
        executors = load_executors(settings.executors)
    types = frozenset(executors.executors) if executors is not None else frozenset()
    return open_store(settings.db, writer or settings.writer_id, read_only=read_only, timeouts=timeouts,
                      action_types=types)  # fmt: skip


def deliverer(
    settings: Settings, log_store: Log | None, metrics: Metrics | None = None, config: ExecutorsConfig | None = None
) -> Deliverer | None:
    """The delivery of this process's outbox to ``settings.executors`` (None: none configured), from ``config``
    when the file was read already; InvalidSettings when it or a secret is wrong; ``log_store`` None: only check."""
    if settings.executors is None:
        return None
    config = config or load_executors(settings.executors)
    senders = build_executors(config, settings.executors)
    if log_store is None:
        return None
    return Deliverer(config, senders, log_store.outbox, metrics.delivered if metrics else None)


def exporter(settings: Settings, log_store: Log | None) -> Exporter | None:
    """The exporter of ``settings.export_config``'s sinks over this process's chain (None: no config);
    InvalidSettings when the config or a sink's secret is wrong.  ``log_store`` None: only check them."""
    if settings.export_config is None:
        return None
    config = load_export_config(settings.export_config)
    sinks = build_sinks(config, settings.export_config)
    if log_store is None:
        return None
    return Exporter(config, sinks, log_store.exports, log_store.writer, checkpoints_path(settings))


def opa_bin(settings: Settings) -> str:
    """The opa binary the settings name (or the one found on PATH or in the cache); OpaNotFound if none."""
    return find_opa(settings.opa_bin)


def policy_problems(settings: Settings) -> list[Problem]:
    """``opa check --strict`` over ``settings.rego_dir``: every file:line:column problem (``opsgate check``)."""
    return check_policies(opa_bin(settings), settings.rego_dir, settings.rego_dir.name)


def policy_tests(settings: Settings, opa: str) -> PolicyTests:
    """``opa test`` over ``settings.rego_dir`` and the entrypoint's contract (what a reload runs) with ``opa``."""
    return run_policy_tests(opa, settings.rego_dir, "rego", contract=True)


async def start_version(
    settings: Settings,
    log_store: Log,
    catalog: Catalog,
    rules_dir: Path,
    rego_dir: Path,
    *,
    check_rego: bool,
    metrics: Metrics | None = None,
    tracer: Tracer = NO_TRACER,
    context: ContextBuilder | None = None,
) -> RunningVersion:
    """Check (``check_rego``: ``opa check``, then ``opa test`` with the entrypoint's contract), compile
    and start the version ``catalog`` was loaded from ``rules_dir`` and ``rego_dir``, and register it
    in the log; raises RulesetInvalid (file:line:column) when broken or a policy test fails.  Nothing is
    served from it until the caller swaps it in."""
    # the checking runs off the event loop: requests go on meanwhile.  The policy tests and the
    # entrypoint's contract (service/adapters/opa/tools.py) run too: a version whose entrypoint could
    # let a denied or approval-bound action through is refused, whatever tests rego/ carries
    if check_rego and settings.opa_url is None:
        await asyncio.to_thread(policy_check(settings), rego_dir, "rego")
        await asyncio.to_thread(require_passing_policy_tests, settings.opa_bin, rego_dir, "rego")
    limits = JsonLimits(settings.max_json_depth, settings.max_list_length)
    key = await asyncio.to_thread(required_redaction_key, settings, _redacting(catalog))
    version = await RunningVersion.start(
        catalog, engine(), guardrails(settings), log_store.records, limits, metrics, tracer, redaction=key,
        context=context,
    )  # fmt: skip
    try:
        git = await asyncio.to_thread(last_commit, rules_dir)
        await log_store.versions.register_version(catalog.version, list(catalog.files), catalog.ruleset_versions, git)
    except BaseException:
        await version.close()
        raise
    return version


def tracer(settings: Settings) -> Tracer:
    """This process's tracer, as the OTEL_* variables configured it (the no-op tracer unless they did);
    made where the service starts, so each worker of ``serve --workers N`` makes its own after the fork."""
    return open_tracer(settings.traces_exporter, settings.otel_service_name)


def _redacting(catalog: Catalog) -> list[str]:
    return [name for name, ruleset in catalog.rulesets.items() if ruleset.redact]


def require_redaction_key(settings: Settings) -> None:
    """``serve``, before any process starts: RedactionKeyMissing (exit 2) when a ruleset of rules/
    declares ``redact:`` and no key is configured, or the key configured is unusable."""
    if load_redaction_key(settings) is not None:
        return
    try:
        catalog = load_catalog(settings.rules_dir, settings.rego_dir)
    except RulesetInvalid:
        return  # reported, with file:line:column, when the service starts
    required_redaction_key(settings, _redacting(catalog))


class Running:
    """What one serving process runs on: the served versions, the decision log, the metrics, the tracer,
    and the signer of its chain's checkpoints (None without a signing key)."""

    def __init__(
        self,
        runtime: Runtime,
        log_store: Log,
        metrics: Metrics,
        proofs: Proofs,
        signer: Checkpointer | None = None,
        tracer: Tracer = NO_TRACER,
        export: Exporter | None = None,
        context: ContextBuilder | None = None,
        executors: Deliverer | None = None,
    ) -> None:
        self.runtime = runtime
        self.context = context
        self.exporter = export
        self.deliverer = executors
        if executors is not None:
            metrics.on_scrape(self._count_actions)  # the outbox by state, counted in the store
        # the delivery of approved actions runs for as long as this process serves, like the signer
        self._delivering = asyncio.create_task(executors.run(), name="opsgate-executors") if executors else None
        if export is not None:
            metrics.on_scrape(self._export_status)  # each sink's lag, read from the log at scrape time
        self.log = log_store
        self.metrics = metrics
        self.tracer = tracer
        self.proofs = proofs
        self.signer = signer
        interval = runtime.settings.checkpoint_interval_s
        self._signing = asyncio.create_task(signer.run(interval), name="opsgate-checkpoints") if signer else None
        metrics.watch_opa(lambda: runtime.guardrails.status())  # OPA's state: the version served now
        metrics.watch_log(log_store.health)  # the log's health and its failed writes by cause
        metrics.on_scrape(self._count_pending)  # the pending approvals gauge, counted in the store

    async def _count_pending(self) -> None:
        self.metrics.set_pending(await self.runtime.approvals.pending_count())

    async def _stop_delivering(self) -> None:
        """Cancel the deliveries under way (they are made again after a restart) and close the executors."""
        if self._delivering is None or self.deliverer is None:
            return
        self._delivering.cancel()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivering
        except Exception:  # noqa: BLE001 - said, and the shutdown goes on
            log.exception("the delivery of approved actions had stopped")
        await self.deliverer.close()

    async def _count_actions(self) -> None:
        if self.deliverer is not None:
            self.metrics.set_actions(await self.deliverer.counts())

    async def _export_status(self) -> None:
        if self.exporter is not None:
            self.metrics.set_export(await self.exporter.status())

    async def close(self) -> None:
        await self._stop_delivering()
        await self.runtime.close()
        if self.context is not None:
            await self.context.close()  # the providers' HTTP client
        try:
            if self._signing is not None and self.signer is not None:
                self._signing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._signing
                await self.signer.sign(final=True)  # covers every record this process wrote
        except Exception:  # noqa: BLE001 - a log or disk that is down: said, and the shutdown goes on
            log.exception("could not sign the final checkpoint of chain %s", self.log.writer)
        finally:
            self.log.close()
            self.tracer.close()  # the spans still buffered are exported


async def checkpointer(settings: Settings, log_store: Log) -> Checkpointer | None:
    """The signer of this process's chain, once it signed its first checkpoint; None (and a warning)
    without a signing key."""
    key = load_signer(settings.signing_key_file, settings.signing_key)
    if key is None:
        log.warning("no signing key (OPSGATE_SIGNING_KEY_FILE): checkpoints are off, truncation cannot be detected")
        return None
    signer = Checkpointer(log_store.writer, log_store.chains, key, CheckpointFiles(checkpoints_path(settings)))
    await signer.sign()
    return signer


async def _close(log_store: Log, traces: Tracer, context: ContextBuilder) -> None:
    await context.close()
    log_store.close()
    traces.close()


async def start(
    settings: Settings,
    *,
    with_shadow: bool = False,
    log_factory: Callable[[Settings], Log] | None = None,
    tracer_factory: Callable[[Settings], Tracer] = tracer,
) -> Running:
    """Open the log (``log_factory``, by default the one ``settings`` name; the executors file read once for it
    and the deliverer) and the tracer, start the version in rules/ and rego/ (and the shadow candidate when asked
    for and configured); everything started is stopped again when a later step fails."""
    executors_config = load_executors(settings.executors) if settings.executors is not None else None
    log_store = log_factory(settings) if log_factory else open_log(settings, executors=executors_config)
    metrics = Metrics()
    traces = tracer_factory(settings)
    context = ContextBuilder(HttpContextFetcher(), settings.context_budget_ms)  # one HTTP client per process
    try:
        signer = await checkpointer(settings, log_store)
        export = exporter(settings, log_store)  # a bad export config stops the start here
        executors = deliverer(settings, log_store, metrics, executors_config)  # and a bad executor's secret
        catalog = await asyncio.to_thread(load_catalog, settings.rules_dir, settings.rego_dir)
        served = await start_version(
            settings, log_store, catalog, settings.rules_dir, settings.rego_dir, check_rego=False, metrics=metrics,
            tracer=traces, context=context,
        )  # fmt: skip
    except BaseException:
        await _close(log_store, traces, context)
        raise
    try:
        shadow = await Shadow.start(settings.shadow, candidates(settings)) if with_shadow and settings.shadow else None
    except BaseException:
        await served.close()
        await _close(log_store, traces, context)
        raise
    # a reload: the version in (catalog, rules_dir, rego_dir), checked, on the same log, metrics and context
    reloaded = functools.partial(
        start_version, settings, log_store, check_rego=True, metrics=metrics, tracer=traces, context=context
    )
    proofs = Proofs(log_store.records, log_store.chains, CheckpointFiles(checkpoints_path(settings)))
    runtime = Runtime(settings, log_store, served, reloaded, shadow, retired=heap.resettle)
    return Running(runtime, log_store, metrics, proofs, signer, traces, export, context, executors)
