"""API keys and roles on a real ``opsgate serve``: the role matrix, 401/403, the caller, open mode, start errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REGO_DIR, RULES_DIR, opsgate
from tests.e2e.server import JSON, Server
from tests.e2e.test_ops_decisions import ops_facts

# one key per role, plus "service" (decide) that makes the decisions the matrix reads and approves
TOKENS = {
    "decide": "og_test-decide-0123456789abcdefghijklmnopq",
    "approve": "og_test-approve-0123456789abcdefghijklmnop",
    "author": "og_test-author-0123456789abcdefghijklmnopq",
    "audit": "og_test-audit-0123456789abcdefghijklmnopqr",
    "admin": "og_test-admin-0123456789abcdefghijklmnopqr",
    "service": "og_test-service-0123456789abcdefghijklmnop",
}
NAMES = {"decide": "decider", "approve": "approver", "author": "author", "audit": "auditor", "admin": "root",
         "service": "service"}  # fmt: skip
PENDING_ORG = 7  # the autonomy ceiling of org 7 is L1: its dispatches wait for approval


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keys_config(tmp: Path) -> dict[str, str]:
    """Three keys in a file, three in the environment: both sources at once."""
    in_file = ("decide", "approve", "author")
    entries = "".join(
        f"  - name: {NAMES[role]}\n    roles: [{role}]\n    sha256: {sha256(TOKENS[role])}\n" for role in in_file
    )
    (tmp / "keys.yaml").write_text(f"keys:\n{entries}")
    in_env = [("audit", "audit"), ("admin", "admin"), ("service", "decide")]
    env = ",".join(f"{NAMES[who]}:{role}:{sha256(TOKENS[who])}" for who, role in in_env)
    return {"OPSGATE_API_KEYS_FILE": str(tmp / "keys.yaml"), "OPSGATE_API_KEYS": env}


def as_(who: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"} if who else {}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, opa_bin: str) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("keyed")
    shutil.copytree(RULES_DIR, tmp / "rules")
    shutil.copytree(REGO_DIR, tmp / "rego")
    autonomy = {"default_max_level": "L3", "orgs": {str(PENDING_ORG): "L1"}}
    (tmp / "rego" / "config" / "autonomy" / "data.json").write_text(json.dumps(autonomy))
    # the candidate of --shadow is the same rules/ and rego/: GET /admin/shadow answers 200
    running = Server(tmp, tmp / "rules", tmp / "rego", opa_bin, OPSGATE_SHADOW=str(tmp), **keys_config(tmp))
    yield running
    running.stop()


def decide(server: Server, facts: dict[str, Any], who: str = "service") -> dict[str, Any]:
    response = server.client.post("/decide", json=facts, headers=as_(who))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


@pytest.fixture(scope="module")
def ids(keyed: Server) -> dict[str, str]:
    """A logged decision (made by "service") and the served version: real ids, so allowed calls answer 200."""
    return {
        "decision": decide(keyed, ops_facts())["decision_id"],
        "version": keyed.client.get("/ready").json()["version"],
    }


def pending_id(server: Server) -> str:
    result = decide(server, {**ops_facts(), "org_id": PENDING_ORG})
    assert result["execution"]["status"] == "PENDING_APPROVAL"
    decision_id: str = result["decision_id"]
    return decision_id


FACTS = ops_facts()
BATCH = {"items": [ops_facts()]}
OUTCOME = {"status": "SUCCEEDED", "detail": "role matrix"}
REASON = {"reason": "role matrix"}
EVALUATE = {
    "ruleset": "ops",
    "facts": FACTS,
    "proposer": {"agent": "role-matrix"},
    "proposal": {"decision_type": "OPS.DISPATCH", "confidence": 0.9, "actions": [{"type": "TRIGGER_PROCESS"}]},
}
EXTERNAL = {"decision_type": "OPS.DISPATCH", "status": "EXECUTED"}
CALLERS = ("decide", "approve", "author", "audit", "admin", None)

# Written by hand from the roles table (docs/production.md "Production configuration"): the status each caller gets.
# 403: a known key without the role.  401: no key (the /ui pages redirect to the login form instead: 303).
# {decision} is a logged decision, {pending} a decision waiting for approval (a fresh one for each call),
# {version} the served version.  An outcome is reported by the caller that asked for the decision ("service"
# here: any other decide key gets 403 outcome_forbidden), or by an approve or admin key.
# method, path, body,                                    decide approve author audit admin no key
MATRIX: list[tuple[str, str, Any, int, int, int, int, int, int]] = [
    ("POST", "/decide", FACTS,                                  200, 403, 403, 403, 200, 401),
    ("POST", "/decide/ops", FACTS,                              200, 403, 403, 403, 200, 401),
    ("POST", "/decide/batch", BATCH,                            200, 403, 403, 403, 200, 401),
    ("POST", "/decide/ops/batch", BATCH,                        200, 403, 403, 403, 200, 401),
    ("POST", "/run", FACTS,                                     200, 403, 403, 403, 200, 401),
    ("POST", "/v1/policy/evaluate", EVALUATE,                   200, 403, 403, 403, 200, 401),
    ("POST", "/v1/policy/decisions", EXTERNAL,                  201, 403, 403, 403, 201, 401),
    ("GET", "/v1/policy/decisions", None,                       403, 403, 403, 200, 200, 401),
    ("POST", "/decisions/{decision}/outcome", OUTCOME,          403, 201, 403, 403, 201, 401),
    ("GET", "/decisions", None,                                 403, 403, 403, 200, 200, 401),
    ("GET", "/decisions/{decision}", None,                      403, 403, 403, 200, 200, 401),
    ("GET", "/decisions/{decision}/explain", None,              403, 403, 403, 200, 200, 401),
    # no signing key on this server: an allowed caller hears 409 not_covered (no checkpoint covers it)
    ("GET", "/decisions/{decision}/proof", None,                403, 403, 403, 409, 409, 401),
    ("POST", "/decisions/{decision}/replay", None,              403, 403, 403, 200, 200, 401),
    ("GET", "/log/head", None,                                  403, 403, 403, 200, 200, 401),
    ("GET", "/rulesets", None,                                  403, 403, 403, 200, 200, 401),
    ("GET", "/rulesets/{version}", None,                        403, 403, 403, 200, 200, 401),
    ("GET", "/rulesets/{version}/diff/{version}", None,         403, 403, 403, 200, 200, 401),
    ("GET", "/metrics", None,                                   403, 403, 403, 200, 200, 401),
    ("GET", "/operations/decisions/pending", None,              403, 200, 403, 403, 200, 401),
    ("POST", "/operations/decisions/{pending}/execute", REASON, 403, 200, 403, 403, 200, 401),
    ("POST", "/operations/decisions/{pending}/reject", REASON,  403, 200, 403, 403, 200, 401),
    ("GET", "/dashboard", None,                                 403, 200, 403, 200, 200, 401),
    ("POST", "/admin/reload", None,                             403, 403, 200, 403, 200, 401),
    # nothing was served before: 409 conflict ("no earlier version") is the answer of an allowed caller
    ("POST", "/admin/rollback", None,                           403, 403, 409, 403, 409, 401),
    ("POST", "/admin/activate/{version}", None,                 403, 403, 200, 403, 200, 401),
    ("GET", "/admin/shadow", None,                              403, 403, 200, 403, 200, 401),
    ("GET", "/ui", None,                                        403, 403, 403, 302, 302, 303),
    ("GET", "/ui/decisions", None,                              403, 403, 403, 200, 200, 303),
    ("GET", "/ui/decisions/{decision}", None,                   403, 403, 403, 200, 200, 303),
    ("POST", "/ui/decisions/{decision}/replay", None,           403, 403, 403, 200, 200, 303),
    ("GET", "/ui/rulesets", None,                               403, 403, 403, 200, 200, 303),
    ("GET", "/ui/rulesets/{version}", None,                     403, 403, 403, 200, 200, 303),
    ("GET", "/ui/rulesets/diff?a={version}&b={version}", None,  403, 403, 403, 200, 200, 303),
    ("GET", "/ui/pending", None,                                403, 200, 403, 200, 200, 303),
    ("GET", "/ui/dashboard", None,                              403, 200, 403, 200, 200, 303),
    # a form answer: 303 back to the queue for an approver, to the login form without a key
    ("POST", "/ui/pending/{pending}/execute", REASON,           403, 303, 403, 403, 303, 303),
    ("POST", "/ui/pending/{pending}/reject", REASON,            403, 303, 403, 403, 303, 303),
    # open to everyone
    ("GET", "/health", None,                                    200, 200, 200, 200, 200, 200),
    ("GET", "/ready", None,                                     200, 200, 200, 200, 200, 200),
    ("GET", "/schema/openapi.json", None,                       200, 200, 200, 200, 200, 200),
    ("GET", "/ui/login", None,                                  200, 200, 200, 200, 200, 200),
    ("POST", "/ui/logout", None,                                303, 303, 303, 303, 303, 303),
]  # fmt: skip


def _cases() -> Iterator[Any]:
    for method, path, body, *statuses in MATRIX:
        for who, status in zip(CALLERS, statuses, strict=True):
            yield pytest.param(method, path, body, who, status, id=f"{method} {path} as {who or 'no key'}")


@pytest.mark.parametrize(("method", "path", "body", "who", "expected"), list(_cases()))
def test_role_matrix(
    keyed: Server, ids: dict[str, str], method: str, path: str, body: Any, who: str | None, expected: int
) -> None:
    target = path.format(**ids, pending=pending_id(keyed) if "{pending}" in path else "")
    form = method == "POST" and path.startswith("/ui")  # the /ui pages post forms
    media = {} if form or method != "POST" else JSON
    response = keyed.client.request(
        method, target, json=None if form else body, data=body if form else None, headers={**as_(who), **media}
    )
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="opsgate"'
    if expected == 403 and not path.startswith("/ui"):
        mine_only = path.endswith("/outcome") and who == "decide"  # the role, but not the caller
        assert response.json()["error"]["code"] == ("outcome_forbidden" if mine_only else "forbidden")
    if expected == 303:
        answered = who is not None and "/pending/" in path
        assert response.headers["Location"].startswith("/ui/pending?answered=" if answered else "/ui/login")


def test_no_key_gets_401_with_the_error_body(keyed: Server) -> None:
    response = keyed.client.post("/decide", json=FACTS)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="opsgate"'
    assert response.json() == {
        "status": "error",
        "error": {
            "code": "unauthorized",
            "message": "missing API key: send Authorization: Bearer <key>",
            "details": [],
        },
    }


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer og_not-a-configured-key",
        f"Bearer {sha256(TOKENS['admin'])}",  # the configured hash is not the key
        f"Bearer {TOKENS['admin']}x",
        f"bearer {TOKENS['admin'][:-1]}",
    ],
)
def test_an_unknown_key_gets_401(keyed: Server, authorization: str) -> None:
    response = keyed.client.post("/decide", json=FACTS, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"] == {"code": "unauthorized", "message": "unknown API key", "details": []}


def test_a_key_that_is_not_bearer_gets_401(keyed: Server) -> None:
    response = keyed.client.post("/decide", json=FACTS, headers={"Authorization": f"Basic {TOKENS['admin']}"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "missing API key: send Authorization: Bearer <key>"


def test_a_key_without_the_role_gets_403_naming_the_roles_needed(keyed: Server) -> None:
    response = keyed.client.get("/dashboard", headers=as_("decide"))
    assert response.status_code == 403
    assert response.json() == {
        "status": "error",
        "error": {
            "code": "forbidden",
            "message": "API key 'decider' may not call this endpoint: it needs the role approve or audit or admin",
            "details": [],
        },
    }


def test_the_decision_record_names_the_key_that_asked(keyed: Server) -> None:
    decision_id = decide(keyed, ops_facts(), who="decide")["decision_id"]
    record = keyed.client.get(f"/decisions/{decision_id}", headers=as_("audit")).json()["record"]
    assert record["caller"] == "decider"
    # the dev-only header counts for nothing once keys are configured
    response = keyed.client.post("/decide", json=FACTS, headers={**as_("admin"), "X-Opsgate-Caller": "mallory"})
    decision_id = response.json()["result"]["decision_id"]
    assert keyed.client.get(f"/decisions/{decision_id}", headers=as_("audit")).json()["record"]["caller"] == "root"


def test_refusals_are_logged_with_the_key_name_and_never_the_key(keyed: Server) -> None:
    assert keyed.client.post("/decide", json=FACTS).status_code == 401
    assert keyed.client.post("/decide", json=FACTS, headers={"Authorization": "Bearer og_wrong"}).status_code == 401
    assert keyed.client.post("/admin/reload", headers={**as_("decide"), **JSON}).status_code == 403
    log = keyed.log_text()
    # one 401 line per kind and address a minute: an earlier test of this module may have written it
    assert "401 no key from 127.0.0.1: " in log
    assert "401 unknown key from 127.0.0.1: " in log
    assert "403 key 'decider' from 127.0.0.1: POST /admin/reload" in log
    assert "og_wrong" not in log
    assert not [who for who, token in TOKENS.items() if token in log]


def test_ready_shows_the_keys_mode_and_count_but_no_hash(keyed: Server) -> None:
    response = keyed.client.get("/ready")
    assert response.json()["auth"] == {"mode": "keys", "keys": 6}
    assert not [who for who, token in TOKENS.items() if sha256(token) in response.text]


# --- open development mode -------------------------------------------------------------------


def test_open_mode_is_shown_in_ready_and_printed_loudly_at_start(server: Server) -> None:
    assert server.client.get("/ready").json()["auth"] == {
        "mode": "open",
        "keys": 0,
        "warning": "no API key configured: every endpoint is open",
    }
    log = server.log_text()
    assert "*  opsgate runs in OPEN DEVELOPMENT MODE: no API key is configured,     *" in log


def test_open_mode_takes_the_caller_from_the_dev_header_else_the_address(server: Server) -> None:
    named = server.client.post("/decide", json=FACTS, headers={"X-Opsgate-Caller": "alice"}).json()["result"]
    plain = server.client.post("/decide", json=FACTS).json()["result"]
    # an Authorization header means nothing without keys
    bogus = server.client.post("/decide", json=FACTS, headers={"Authorization": "Bearer whatever"})
    assert bogus.status_code == 200
    callers = [server.client.get(f"/decisions/{r['decision_id']}").json()["record"]["caller"] for r in (named, plain)]
    assert callers == ["alice", "127.0.0.1"]


# --- start-up errors -------------------------------------------------------------------------


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPSGATE_")}
    return opsgate("serve", "--port", "9", "--db", str(tmp_path / "d.db"), *args, env={**environ, **env})


@pytest.mark.parametrize(
    ("args", "env"),
    [pytest.param(("--require-auth",), {}, id="flag"), pytest.param((), {"OPSGATE_REQUIRE_AUTH": "1"}, id="env")],
)
def test_require_auth_without_a_key_refuses_to_start(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    done = serve(tmp_path, *args, **env)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "opsgate: --require-auth (OPSGATE_REQUIRE_AUTH) is on but no API key is configured: "
        "set OPSGATE_API_KEYS_FILE or OPSGATE_API_KEYS (`opsgate keys new` makes a key)"
    )


def test_an_unknown_role_in_the_keys_file_refuses_to_start_naming_the_entry(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"keys:\n  - name: ci\n    roles: [decide, deployer]\n    sha256: {sha256('k')}\n")
    done = serve(tmp_path, "--api-keys-file", str(keys))
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"opsgate: API keys file {keys}: key 1 ('ci'): unknown role(s) 'deployer'; "
        "the roles are decide, approve, author, audit, admin"
    )


def test_a_key_from_keys_new_opens_the_door(tmp_path: Path, opa_bin: str) -> None:
    made = opsgate("keys", "new", "--name", "ops-bot", "--roles", "decide")
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    token, entry = lines[2].strip(), lines[-1].strip()
    running = Server(tmp_path, RULES_DIR, REGO_DIR, opa_bin, OPSGATE_API_KEYS=entry)
    try:
        bearer = {"Authorization": f"Bearer {token}"}
        answer = running.client.post("/decide", json=FACTS, headers=bearer)
        assert answer.status_code == 200, answer.text
        record = running.client.get(f"/decisions/{answer.json()['result']['decision_id']}", headers=bearer)
        assert record.status_code == 403  # a decide key does not read the log
    finally:
        running.stop()
