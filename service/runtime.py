"""The composition root: wires the real engine, OPA and decision log from Settings."""

from __future__ import annotations

from service.catalog import Catalog, load_catalog
from service.engine import shared_engine
from service.gitinfo import last_commit
from service.guardrails import Guardrails
from service.log_store import SqlDecisionLog
from service.pipeline import DecisionService
from service.review import ReviewService
from service.settings import Settings


class Runtime:
    """Everything one serving process holds; started and closed as a unit."""

    def __init__(self, settings: Settings, catalog: Catalog, guardrails: Guardrails, log: SqlDecisionLog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.guardrails = guardrails
        self.log = log
        self.service = DecisionService(catalog, shared_engine(), guardrails, log)
        self.review = ReviewService(log, self.service, lambda: self.catalog)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        catalog = load_catalog(settings.rules_dir, settings.rego_dir)
        guardrails = Guardrails(
            settings.opa_bin,
            timeout=settings.opa_timeout_ms / 1000,
            opa_url=settings.opa_url,
            restart_backoff=settings.opa_restart_backoff_s,
        )
        log = SqlDecisionLog(settings.db, settings.writer_id)
        try:
            rulesets = {name: ruleset.version for name, ruleset in catalog.rulesets.items()}
            await log.register_version(catalog.version, list(catalog.files), rulesets, last_commit(settings.rules_dir))
            await guardrails.start(catalog.policies, catalog.version)
        except BaseException:
            log.close()
            await guardrails.close()
            raise
        return cls(settings, catalog, guardrails, log)

    async def close(self) -> None:
        await self.guardrails.close()
        self.log.close()
