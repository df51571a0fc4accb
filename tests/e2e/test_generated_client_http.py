"""A Python client generated from the OpenAPI document that a real ``opsgate serve`` publishes
(openapi-python-client, pinned in the dev extras) decides with typed facts and reads typed answers."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import EXAMPLE_FACTS, RULES_DIR
from tests.e2e.server import Server

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "opsgate_client"


@pytest.fixture(scope="module")
def client_package(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The client generated from /schema/openapi.json, importable as ``opsgate_client``."""
    where = tmp_path_factory.mktemp("generated")
    document = server.client.get("/schema/openapi.json")
    assert document.status_code == 200
    (where / "openapi.json").write_bytes(document.content)
    (where / "config.yaml").write_text("post_hooks: []\n")  # no formatter run on the generated code
    generated = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(where / "openapi.json"), "--output-path", str(where / PACKAGE),
         "--meta", "none", "--config", str(where / "config.yaml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr
    sys.path.insert(0, str(where))
    try:
        yield where / PACKAGE
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def generated(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture
def client(client_package: Path, server: Server) -> Iterator[Any]:
    """The generated ``Client`` for the server (its connections closed after the test)."""
    with generated("client").Client(base_url=server.url) as opened:
        yield opened


def test_the_generated_client_has_a_typed_call_for_each_shipped_ruleset(client_package: Path) -> None:
    for ruleset in sorted(path.stem for path in RULES_DIR.glob("*.yaml")):
        assert (client_package / "api" / "default" / f"decide_{ruleset}.py").is_file()
        assert (client_package / "api" / "default" / f"decide_{ruleset}_batch.py").is_file()


def test_a_generated_client_decides_with_the_ops_ruleset(client: Any) -> None:
    models = generated("models")
    decide_ops = generated("api.default.decide_ops")

    answer = decide_ops.sync(client=client, body=models.OpsFacts.from_dict(EXAMPLE_FACTS))

    assert isinstance(answer, models.DecisionResponse)
    assert answer.status == "success"
    assert answer.agent == "operations-agent"
    assert answer.result.decision.decision_type == "OPS.DISPATCH"
    assert answer.result.decision.confidence == 0.85
    assert answer.result.execution.status == "APPROVED"
    assert [rule.id for rule in answer.result.explanation.fired_rules] == ["dispatch"]
    assert answer.result.explanation.ruleset.name == "ops"


def test_a_generated_client_reads_an_error_and_a_batch_as_typed_values(client: Any) -> None:
    models = generated("models")
    wrong = models.OpsFacts.from_dict({**EXAMPLE_FACTS, "org_id": -1})  # the client does not check bounds

    refused = generated("api.default.decide_ops").sync_detailed(client=client, body=wrong)
    assert refused.status_code == 422
    assert isinstance(refused.parsed, models.ErrorResponse)
    assert refused.parsed.error.code == "invalid_facts"
    assert [(problem.path, problem.reason) for problem in refused.parsed.error.details] == [
        ("org_id", "Expected `int` >= 0")
    ]

    body = models.DecideOpsBatchBody(items=[models.OpsFacts.from_dict(EXAMPLE_FACTS), wrong])
    batch = generated("api.default.decide_ops_batch").sync(client=client, body=body)
    assert isinstance(batch, models.BatchResponse)
    assert (batch.count, batch.decided, batch.errors) == (2, 1, 1)
    assert isinstance(batch.results[0], models.DecisionResponse)
    assert batch.results[0].result.decision.decision_type == "OPS.DISPATCH"
    assert isinstance(batch.results[1], models.ErrorResponse)
    assert batch.results[1].error.code == "invalid_facts"
