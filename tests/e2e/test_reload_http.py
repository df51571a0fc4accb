"""Hot reload, rollback and activate against a real `opsgate serve`, under load."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.e2e.server import JSON, Server
from tests.e2e.test_ops_decisions import ops_facts, result_of

RETRY_CONFIDENCE = "confidence: 0.85 - 0.05 * process.attempts - 0.10 * history.failures"
# RETRY at attempts 1, failures 1: 0.85 - 0.05 - 0.10 = 0.70 in version A, 0.80 - 0.15 = 0.65 in version B
CONFIDENCE = {"A": 0.7, "B": 0.65}


class Deciding:
    """Three clients deciding ``ops_facts(failures=1)`` until the block ends: every status, every
    200's (revision, confidence), every transport failure.  ``headers``: each client's own."""

    def __init__(self, server: Server, timeout: float = 10, headers: dict[str, str] | None = None) -> None:
        self.server, self.timeout, self.headers = server, timeout, headers or {}
        self.stop = threading.Event()
        self.statuses: Counter[int] = Counter()
        self.answers: list[tuple[str, float]] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._client) for _ in range(3)]

    def __enter__(self) -> Deciding:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _client(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=self.timeout, headers=self.headers) as http:
            while not self.stop.is_set():
                try:
                    response = http.post("/decide", json=ops_facts(failures=1))
                except httpx.TransportError as error:
                    self.failures.append(repr(error))
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    result = response.json()["result"]
                    self.answers.append(
                        (result["explanation"]["guardrails"]["revision"], result["decision"]["confidence"])
                    )

    def assert_each_answer_is_one_version(self, version_a: str, version_b: str) -> None:
        """No failure, only 200s (more than 100), and every answer whole from one version: its
        revision and its confidence agree."""
        assert self.failures == [] and list(self.statuses) == [200], (self.failures, self.statuses)
        assert self.statuses[200] > 100, self.statuses
        by_version = {version_a: CONFIDENCE["A"], version_b: CONFIDENCE["B"]}
        assert {(revision, by_version.get(revision)) for revision, _ in self.answers} == set(by_version.items())
        assert all(confidence == by_version[revision] for revision, confidence in self.answers)


def test_twenty_reloads_under_load_fail_no_request_and_each_answer_is_one_version(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]
) -> None:
    rules, rego = copied_dirs
    text_a = (rules / "ops.yaml").read_text()
    text_b = text_a.replace(RETRY_CONFIDENCE, RETRY_CONFIDENCE.replace("0.85", "0.80"))
    server = start_server(rules, rego)
    version_a = server.client.get("/ready").json()["version"]
    reloaded = []
    with Deciding(server) as deciding:
        for n in range(20):
            (rules / "ops.yaml").write_text(text_b if n % 2 == 0 else text_a)
            response = server.client.post("/admin/reload", headers=JSON)
            assert response.status_code == 200, response.text
            assert response.json()["changed"] is True
            reloaded.append(response.json()["version"])

    version_b = reloaded[0]
    assert reloaded == [version_b, version_a] * 10
    deciding.assert_each_answer_is_one_version(version_a, version_b)


def test_an_invalid_reload_is_refused_with_its_location_and_the_old_version_keeps_serving(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]
) -> None:
    rules, rego = copied_dirs
    server = start_server(rules, rego)
    before = server.client.get("/ready").json()["version"]
    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace("when: history.failures > 0", "when: history.failures >> 0"))
    response = server.client.post("/admin/reload", headers=JSON)
    assert response.status_code == 422
    line = text[: text.index("when: history.failures > 0")].count("\n") + 1
    detail = response.json()["error"]["details"][0]
    assert (detail["file"], detail["line"], detail["column"]) == ("rules/ops.yaml", line, 29)
    assert detail["message"] == f"rules/ops.yaml:{line}:29: error: rules[3].when: expected a value, found '>'"

    policy = rego / "guardrails" / "ops" / "retry_limit" / "retry_limit.rego"
    (rules / "ops.yaml").write_text(text)
    policy.write_text(policy.read_text().replace("attempts >= _max_attempts", "attempts >= _undefined_limit"))
    refused = server.client.post("/admin/reload", headers=JSON)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["file"] == "rego/guardrails/ops/retry_limit/retry_limit.rego"

    assert server.client.get("/ready").json()["version"] == before
    assert result_of(server, ops_facts(failures=1))["decision"]["confidence"] == 0.7


def test_rollback_and_activate_return_to_earlier_versions(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]
) -> None:
    rules, rego = copied_dirs
    server = start_server(rules, rego)
    version_a = server.client.get("/ready").json()["version"]
    nothing = server.client.post("/admin/rollback", headers=JSON)
    assert nothing.status_code == 409 and nothing.json()["error"]["message"] == "no earlier version to roll back to"
    assert server.client.post("/admin/reload", headers=JSON).json()["changed"] is False  # same files, same version

    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace(RETRY_CONFIDENCE, RETRY_CONFIDENCE.replace("0.85", "0.80")))
    version_b = server.client.post("/admin/reload", headers=JSON).json()["version"]
    assert result_of(server, ops_facts(failures=1))["decision"]["confidence"] == CONFIDENCE["B"]

    back = server.client.post("/admin/rollback", headers=JSON).json()
    assert (back["version"], back["previous"], back["changed"]) == (version_a, version_b, True)
    assert result_of(server, ops_facts(failures=1))["decision"]["confidence"] == CONFIDENCE["A"]

    again = server.client.post(f"/admin/activate/{version_b[:10]}", headers=JSON).json()
    assert again["version"] == version_b
    ready = server.client.get("/ready").json()  # one process: its own entry, as with several workers
    this = {"pid": server.proc.pid, "writer": ready["decision_log"]["writer"], "version": version_b}
    assert ready["workers"] == again["workers"] == [{**this, "rulesets": again["rulesets"]}]
    decided = result_of(server, ops_facts(failures=1))
    assert decided["decision"]["confidence"] == CONFIDENCE["B"]
    assert decided["explanation"]["guardrails"]["revision"] == version_b
    listing = server.client.get("/rulesets").json()
    assert listing["current"] == version_b and len(listing["versions"]) == 2
    assert server.client.post("/admin/activate/0000000000", headers=JSON).status_code == 404


def test_a_reload_whose_policy_tests_fail_is_refused_with_their_location_and_the_old_version_keeps_serving(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]
) -> None:
    rules, rego = copied_dirs
    (rego / "config" / "autonomy" / "data.json").write_text(
        json.dumps({"default_max_level": "L3", "orgs": {"7": "L1"}})
    )
    server = start_server(rules, rego)
    before = server.client.get("/ready").json()["version"]
    held = {**ops_facts(), "org_id": 7}  # its L2 DISPATCH waits for approval
    assert result_of(server, held)["execution"]["status"] == "PENDING_APPROVAL"

    # an entrypoint that drops approvals, with the entrypoint's own tests deleted: the contract still runs
    entrypoint = rego / "opsgate" / "opsgate.rego"
    shipped = entrypoint.read_text()
    entrypoint.write_text(shipped.replace('"approvals": approvals,', '"approvals": [],').replace(
        '"requires_approval": count(approvals) > 0,', '"requires_approval": false,'))  # fmt: skip
    (rego / "opsgate" / "opsgate_test.rego").unlink()
    refused = server.client.post("/admin/reload", headers=JSON)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "ruleset_invalid"
    contract = (ROOT / "service" / "adapters" / "opa" / "entrypoint_contract_test.rego").read_text().splitlines()
    failed = {(d["file"], d["line"]) for d in error["details"]}
    assert failed == {
        ("service/adapters/opa/entrypoint_contract_test.rego", contract.index(line) + 1)
        for line in contract
        if line.startswith(("test_success_an_approval_", "test_fail_denies_and_approvals_of_several"))
    }

    # a policy changed without its tests: the policy's own failing test is named
    entrypoint.write_text(shipped)
    policy = rego / "guardrails" / "ops" / "min_confidence" / "min_confidence.rego"
    policy.write_text(policy.read_text().replace("_min_confidence := 0.6", "_min_confidence := 0.4"))
    refused = server.client.post("/admin/reload", headers=JSON)
    assert refused.status_code == 422, refused.text
    files = {d["file"] for d in refused.json()["error"]["details"]}
    assert "rego/guardrails/ops/min_confidence/min_confidence_test.rego" in files

    assert server.client.get("/ready").json()["version"] == before
    assert result_of(server, held)["execution"]["status"] == "PENDING_APPROVAL"
    # the shipped entrypoint, its own tests still deleted: the contract passes, the version loads
    policy.write_text(policy.read_text().replace("_min_confidence := 0.4", "_min_confidence := 0.6"))
    text = (rules / "ops.yaml").read_text()
    (rules / "ops.yaml").write_text(text.replace(RETRY_CONFIDENCE, RETRY_CONFIDENCE.replace("0.85", "0.80")))
    loaded = server.client.post("/admin/reload", headers=JSON)
    assert loaded.status_code == 200 and loaded.json()["changed"] is True, loaded.text
    assert result_of(server, held)["execution"]["status"] == "PENDING_APPROVAL"


def test_a_rollback_to_a_version_that_fails_the_entrypoint_contract_is_refused(
    start_server: Callable[..., Server], copied_dirs: tuple[Path, Path]
) -> None:
    rules, rego = copied_dirs
    (rego / "config" / "autonomy" / "data.json").write_text(
        json.dumps({"default_max_level": "L3", "orgs": {"7": "L1"}})
    )
    entrypoint = rego / "opsgate" / "opsgate.rego"
    shipped = entrypoint.read_text()
    entrypoint.write_text(shipped.replace('"requires_approval": count(approvals) > 0,', '"requires_approval": false,'))
    server = start_server(rules, rego)  # served as started (the files are checked by opsgate check, not here)
    entrypoint.write_text(shipped)
    fixed = server.client.post("/admin/reload", headers=JSON)
    assert fixed.status_code == 200, fixed.text
    held = {**ops_facts(), "org_id": 7}
    assert result_of(server, held)["execution"]["status"] == "PENDING_APPROVAL"

    refused = server.client.post("/admin/rollback", headers=JSON)
    assert refused.status_code == 422, refused.text
    files = {d["file"] for d in refused.json()["error"]["details"]}
    assert files == {"service/adapters/opa/entrypoint_contract_test.rego"}
    assert server.client.get("/ready").json()["version"] == fixed.json()["version"]
    assert result_of(server, held)["execution"]["status"] == "PENDING_APPROVAL"
