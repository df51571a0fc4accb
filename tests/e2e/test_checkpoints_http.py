"""A live `opsgate serve --workers 2` signs each worker's chain: checkpoints while it runs, a proof served
by GET /decisions/{id}/proof, and at SIGTERM a final checkpoint of each chain covering every record."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from service.adapters.attest.signing import generate
from tests.conftest import copy_ops_only, opsgate, sql
from tests.e2e.server import Server
from tests.e2e.test_ops_decisions import ops_facts


def checkpoints(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def signed_sizes(directory: Path) -> dict[str, int]:
    """Each writer's largest signed tree size."""
    sizes: dict[str, int] = {}
    for point in checkpoints(directory):
        sizes[point["writer"]] = max(sizes.get(point["writer"], 0), point["tree_size"])
    return sizes


def wait_for(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        time.sleep(0.05)


def test_a_live_server_signs_its_chains_serves_proofs_and_signs_a_final_checkpoint_at_sigterm(
    tmp_path: Path, opa_bin: str
) -> None:
    rules, rego = copy_ops_only(tmp_path)
    public = generate(tmp_path / "signing.key")
    directory = tmp_path / "checkpoints"  # the default: beside the --db file
    server = Server(tmp_path, rules, rego, opa_bin, OPSGATE_WORKERS="2", OPSGATE_CHECKPOINT_INTERVAL_S="0.5",
                    OPSGATE_SIGNING_KEY_FILE=str(tmp_path / "signing.key"))  # fmt: skip
    try:
        ids = []
        for attempts in range(1, 7):
            response = server.decide(ops_facts(attempts=attempts % 3 + 1))
            assert response.status_code == 200, response.text
            ids.append(response.json()["result"]["decision_id"])
        wait_for(lambda: sum(signed_sizes(directory).values()) == 6, 60, "checkpoints covering all 6 decisions")
        proof = server.client.get(f"/decisions/{ids[0]}/proof")
        assert proof.status_code == 200, proof.text
        (tmp_path / "proof.json").write_bytes(proof.content)
        checked = opsgate("log", "check-proof", str(tmp_path / "proof.json"), "--public-key", str(public))
        assert checked.returncode == 0, checked.stderr
        assert proof.json()["checkpoint"]["final"] is False
        extended = server.client.get(f"/decisions/{ids[0]}/proof", params={"from_size": "1"})
        assert extended.status_code == 200, extended.text
        assert extended.json()["consistency"]["from_size"] == 1
        bad = server.client.get(f"/decisions/{ids[0]}/proof", params={"from_size": "none"})
        assert bad.status_code == 400
        assert bad.json()["error"]["details"][0]["path"] == "from_size"
    finally:
        server.stop()
    held = {str(w): int(n) for w, n in sql(server.db, "SELECT writer, MAX(seq) FROM log_entries GROUP BY writer")}
    assert sum(held.values()) == 6
    finals = {p["writer"]: p["tree_size"] for p in checkpoints(directory) if p["final"]}
    assert sorted(w.rsplit("-", 1)[1] for w in finals) == ["w0", "w1"], "each worker signs as it stops"
    assert {w: n for w, n in finals.items() if n} == held, "each final checkpoint covers every record of its chain"
    verified = opsgate("log", "verify", "--db", server.db, "--public-key", str(public))
    assert verified.returncode == 0, verified.stderr
    assert "6 records covered" in verified.stdout
