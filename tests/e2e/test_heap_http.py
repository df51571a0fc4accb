"""A real ``serve`` freezes what its start made (service/heap.py) and says so on /metrics, beside the
collector's own counts; ``OPSGATE_GC_YOUNG=0`` leaves the collector as the interpreter set it; after a
reload the retired version is collected and the served one frozen again, still deciding."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import copy_ops_only
from tests.e2e.server import Server
from tests.e2e.test_export_nats import wait_for
from tests.e2e.test_ops_decisions import ops_facts


def gc_samples(server: Server) -> dict[str, float]:
    text = server.client.get("/metrics").text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "opsgate_gc_frozen_objects":
                found["frozen"] = sample.value
            elif sample.name == "python_gc_collections_total":
                found[f"collections_{sample.labels['generation']}"] = sample.value
    return found


def test_the_start_is_frozen_and_a_reload_freezes_the_new_version_again(tmp_path: Path, opa_bin: str) -> None:
    rules, rego = copy_ops_only(tmp_path)
    server = Server(tmp_path, rules, rego, opa_bin)
    try:
        started = gc_samples(server)
        assert started["frozen"] > 20_000  # the app, the rulesets and the libraries: about 100,000 objects
        assert {"collections_0", "collections_1", "collections_2"} <= set(started)
        ops = rules / "ops.yaml"
        ops.write_text(ops.read_text() + "\n# a comment changes the version\n")
        reloaded = server.client.post("/admin/reload", headers={"Content-Type": "application/json"})
        assert reloaded.status_code == 200 and reloaded.json()["changed"] is True
        # once the old version has drained and retired, everything is collected (a full collection, which
        # nothing else makes this soon) and what is alive frozen again
        after = wait_for(
            lambda: (s := gc_samples(server))["collections_2"] > started["collections_2"] and s,
            30,
            "a full collection after the retire",
        )
        assert after["frozen"] > 20_000
        answer = server.client.post("/decide/ops", json=ops_facts(1)).json()["result"]
        assert answer["explanation"]["guardrails"]["revision"] == reloaded.json()["version"]
    finally:
        server.stop()


def test_young_zero_freezes_nothing(tmp_path: Path, opa_bin: str) -> None:
    rules, rego = copy_ops_only(tmp_path)
    server = Server(tmp_path, rules, rego, opa_bin, OPSGATE_GC_YOUNG="0")
    try:
        assert server.client.post("/decide/ops", json=ops_facts(0)).status_code == 200
        assert gc_samples(server)["frozen"] == 0
    finally:
        server.stop()
