"""The composition root: wires the real engine, OPA and decision log from Settings."""

from __future__ import annotations

from service.catalog import Catalog, load_catalog
from service.decision_log import SqliteDecisionLog
from service.engine import shared_engine
from service.guardrails import Guardrails
from service.pipeline import DecisionService
from service.settings import Settings


class Runtime:
    """Everything one serving process holds; started and closed as a unit."""

    def __init__(self, settings: Settings, catalog: Catalog, guardrails: Guardrails, log: SqliteDecisionLog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.guardrails = guardrails
        self.log = log
        self.service = DecisionService(catalog, shared_engine(), guardrails, log)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        catalog = load_catalog(settings.rules_dir, settings.rego_dir)
        guardrails = Guardrails(
            settings.opa_bin,
            timeout=settings.opa_timeout_ms / 1000,
            opa_url=settings.opa_url,
            restart_backoff=settings.opa_restart_backoff_s,
        )
        log = SqliteDecisionLog(settings.db_path)
        try:
            await guardrails.start(catalog.policies, catalog.version)
        except BaseException:
            log.close()
            await guardrails.close()
            raise
        return cls(settings, catalog, guardrails, log)

    async def close(self) -> None:
        await self.guardrails.close()
        self.log.close()
