"""Guardrails: the only module that runs or queries OPA.

OPA runs as one long-lived child (``opa run --server``) on a unix socket in a
private runtime directory, loaded with a bundle built from ``rego/`` whose
revision is the policy version.  A supervisor restarts it when it dies, checks
its ``/health`` periodically, and kills and restarts it when it stays unhealthy.
Every query has a timeout; any failure yields ``Verdict(available=False)``, which
the decision turns into an escalation (fail closed).  A circuit breaker
(service/adapters/opa/breaker.py) sits in front of the queries: while it is open, verdicts
are unavailable at once, without asking OPA.  ``opa_url`` names an external OPA
(a sidecar) instead of the child; it gets the same breaker and health checks
(but no restarts).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from service.adapters.opa.batch import MicroBatcher
from service.adapters.opa.breaker import OPEN, CircuitBreaker
from service.adapters.opa.client import OpaHttpClient, encode
from service.domain.decision import Verdict, Violation
from service.errors import (
    GuardrailsUnavailable,
    OpaHttpError,
    OpaNotFound,
    OpaStartFailed,
    OpsgateError,
    Problem,
    RulesetInvalid,
)

log = logging.getLogger("opsgate.guardrails")

DECISION_PATH = "/v1/data/opsgate/decision"
BATCH_PATH = "/v1/data/opsgate/batch"
OPA_VERSION = "1.4.2"


# --- finding the binary ---------------------------------------------------------


def find_opa(explicit: str | None = None) -> str:
    """``explicit`` (OPSGATE_OPA_BIN), an opa 1.x on PATH, or the cached build."""
    candidates: list[str | None] = [explicit] if explicit else []
    candidates += [shutil.which("opa"), str(cached_opa_path())]
    for candidate in candidates:
        if candidate and _is_opa_1x(candidate):
            return candidate
        if explicit and candidate == explicit:
            raise OpaNotFound(f"OPSGATE_OPA_BIN={explicit} is not an opa 1.x binary")
    raise OpaNotFound("no opa 1.x binary found: run `make opa` (builds it once) or set OPSGATE_OPA_BIN")


def cached_opa_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "opsgate" / f"opa-{OPA_VERSION}" / "opa"


def _is_opa_1x(path: str) -> bool:
    try:
        out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except OSError:
        return False
    return out.startswith("Version: 1.")


# --- the policy bundle ----------------------------------------------------------


class PolicyFile(msgspec.Struct, frozen=True):
    path: str  # as shown to authors, e.g. rego/guardrails/ops/retry_limit/retry_limit.rego
    content: bytes


class PolicyBundle(msgspec.Struct, frozen=True):
    """The files of ``rego/`` that make up the served bundle, and where each rule is."""

    root: str
    files: tuple[PolicyFile, ...]
    locations: dict[str, str]  # a deny/approval rule's custom.id -> "file:line"

    @property
    def hashed(self) -> list[tuple[str, bytes]]:
        return [(f.path, f.content) for f in self.files]


def read_policies(rego_dir: Path, display_root: str = "rego") -> PolicyBundle:
    """Every .rego (tests excluded) and data.json under ``rego_dir``."""
    files: list[PolicyFile] = []
    for path in sorted(rego_dir.rglob("*")):
        if path.is_file() and _in_bundle(path):
            display = f"{display_root}/{path.relative_to(rego_dir).as_posix()}"
            files.append(PolicyFile(display, path.read_bytes()))
    locations: dict[str, str] = {}
    for file in files:
        if file.path.endswith(".rego"):
            locations.update(_metadata_locations(file))
    return PolicyBundle(str(rego_dir), tuple(files), locations)


def _in_bundle(path: Path) -> bool:
    return (path.suffix == ".rego" and not path.name.endswith("_test.rego")) or path.name == "data.json"


_ID_LINE = re.compile(r"^#\s+id:\s*['\"]?([^'\"\s]+)")
_TITLE_LINE = re.compile(r"^#\s*title:\s*(.+?)\s*$")


def location_key(policy_id: str, title: str) -> str:
    """Two rules may share a policy id (e.g. two ways to fail one check); their titles tell them apart."""
    return f"{policy_id}\0{title}"


def _metadata_locations(file: PolicyFile) -> dict[str, str]:
    """Map each ``# METADATA`` block's custom id (and id + title) to the line of the rule it annotates."""
    found: dict[str, str] = {}
    pending: str | None = None
    title = ""
    in_block = False
    for number, raw in enumerate(file.content.decode("utf-8", "replace").splitlines(), start=1):
        line = raw.strip()
        if line == "# METADATA":
            in_block, pending, title = True, None, ""
        elif in_block and line.startswith("#"):
            match, titled = _ID_LINE.match(line), _TITLE_LINE.match(line)
            pending = match.group(1) if match else pending
            title = titled.group(1) if titled and not title else title
        elif in_block and line:
            if pending:
                found.setdefault(pending, f"{file.path}:{number}")
                found[location_key(pending, title)] = f"{file.path}:{number}"
            in_block = False
    return found


def write_bundle(bundle: PolicyBundle, target: Path, revision: str) -> Path:
    """Write the bundle's files with a ``.manifest`` carrying ``revision``."""
    shutil.rmtree(target, ignore_errors=True)
    for file in bundle.files:
        relative = file.path.split("/", 1)[1]
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(file.content)
    target.mkdir(parents=True, exist_ok=True)
    (target / ".manifest").write_text(json.dumps({"revision": revision}))
    return target


def check_policies(opa_bin: str, rego_dir: Path, display_root: str = "rego") -> list[Problem]:
    """``opa check --strict``, its errors as file:line:column problems."""
    result = subprocess.run(
        [opa_bin, "check", "--strict", "--format", "json", str(rego_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 0:
        return []
    try:
        errors = json.loads(result.stdout or result.stderr).get("errors", [])
    except json.JSONDecodeError:
        return [Problem(f"opa check failed: {(result.stderr or result.stdout).strip()}", file=display_root)]
    return [_opa_problem(error, rego_dir, display_root) for error in errors]


def require_valid_policies(opa_bin: str | None, rego_dir: Path, display_root: str, whose: str = "the") -> None:
    """``check_policies`` as a gate: RulesetInvalid, with every file:line:column problem, unless clean."""
    problems = check_policies(find_opa(opa_bin), rego_dir, display_root)
    if problems:
        raise RulesetInvalid(f"{len(problems)} problem(s) in {whose} policies", problems)


def _opa_problem(error: dict[str, Any], rego_dir: Path, display_root: str) -> Problem:
    location = error.get("location") or {}
    file = str(location.get("file", ""))
    if file.startswith(str(rego_dir)):
        file = display_root + file[len(str(rego_dir)) :]
    reason = f"{error.get('code', 'rego_error')}: {error.get('message', '')}"
    return Problem(reason, file=file, line=int(location.get("row", 0)), column=int(location.get("col", 0)))


class PolicyTests(msgspec.Struct, frozen=True):
    """What ``opa test`` said about the policies' own ``_test.rego`` files."""

    root: str
    passed: bool
    pass_count: int
    fail_count: int
    failures: list[str]  # "data.pkg.test_name (rego/...:line)"
    error: str | None = None


def run_policy_tests(opa_bin: str, rego_dir: Path, display_root: str = "rego") -> PolicyTests:
    """``opa test --format json`` over ``rego_dir``; a failing, erroring or uncompilable test fails."""
    result = subprocess.run(
        [opa_bin, "test", "--format", "json", str(rego_dir)], capture_output=True, text=True, timeout=300, check=False
    )
    try:
        tests = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        tests = None
    if not isinstance(tests, list):  # compile errors: no results, the reasons on stderr
        reason = (result.stderr or result.stdout).strip() or f"opa test exited with {result.returncode}"
        return PolicyTests(display_root, False, 0, 0, [], error=reason)
    failed = [t for t in tests if t.get("fail") or t.get("error")]
    failures = [_test_name(t, rego_dir, display_root) for t in failed]
    passed = result.returncode == 0 and not failed and bool(tests)
    error = None if passed or failed else f"opa test exited with {result.returncode} and no failing test"
    return PolicyTests(display_root, passed, len(tests) - len(failed), len(failed), failures, error)


def _test_name(test: dict[str, Any], rego_dir: Path, display_root: str) -> str:
    location = test.get("location") or {}
    file = str(location.get("file", ""))
    if file.startswith(str(rego_dir)):
        file = display_root + file[len(str(rego_dir)) :]
    error = test.get("error")
    why = f": {error.get('message', error) if isinstance(error, dict) else error}" if error else ""
    return f"{test.get('package', '')}.{test.get('name', '')} ({file}:{location.get('row', 0)}){why}"


# --- the OPA child process ------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if hasattr(ctypes, "CDLL") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class HealthPolicy(msgspec.Struct, frozen=True):
    """How OPA's ``GET /health`` is watched."""

    interval_s: float = 1.0  # between two checks
    restart_after_s: float = 10.0  # a child unhealthy this long is killed and restarted

    @property
    def timeout_s(self) -> float:  # a check never outlasts the interval (nor 1 s)
        return min(self.interval_s, 1.0)


async def probe_health(client: OpaHttpClient, timeout: float) -> bool:
    """OPA's ``GET /health`` answered 200 within ``timeout``."""
    try:
        return await asyncio.wait_for(client.get("/health"), timeout=timeout) == 200
    except (OpaHttpError, TimeoutError):
        return False


class OpaProcess:
    """One supervised ``opa run --server`` child on a private unix socket."""

    def __init__(
        self,
        opa_bin: str,
        restart_backoff: float = 0.2,
        max_backoff: float = 2.0,
        health: HealthPolicy | None = None,
    ) -> None:
        self.opa_bin = opa_bin
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="opsgate-opa-"))
        os.chmod(self.runtime_dir, 0o700)
        self.socket = self.runtime_dir / "opa.sock"
        self.address = f"unix://{self.socket}"
        self.restarts = 0
        self.unhealthy_kills = 0  # children killed for staying unhealthy (each is then restarted)
        self.health = health or HealthPolicy()
        self.healthy = False  # the last health check (or start) found it answering
        self._unhealthy_since: float | None = None
        self._bundle_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._backoff = (restart_backoff, max_backoff)
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def up(self) -> bool:
        """Running and answering its last health check."""
        return self.running and self.healthy

    async def start(self, bundle: PolicyBundle, revision: str) -> None:
        self._bundle_dir = write_bundle(bundle, self.runtime_dir / "bundle", revision)
        await self._spawn()
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _spawn(self) -> None:
        self.socket.unlink(missing_ok=True)
        args = [
            self.opa_bin, "run", "--server", "--addr", self.address, "--bundle", str(self._bundle_dir),
            "--skip-version-check", "--disable-telemetry", "--log-level", "error",
            "--unix-socket-perm", "700", "--shutdown-grace-period", "1",
        ]  # fmt: skip
        with open(self.runtime_dir / "opa.log", "ab") as out:
            self._proc = subprocess.Popen(
                args, stdout=out, stderr=out, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
            )
        await self._wait_healthy(timeout=15.0)
        self.healthy, self._unhealthy_since = True, None

    async def _wait_healthy(self, timeout: float) -> None:
        client = OpaHttpClient(self.address)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise OpaStartFailed(
                    f"opa exited at start (code {self._proc and self._proc.returncode}): {self.log_tail()}"
                )
            if await probe_health(client, timeout=1.0):
                return
            await asyncio.sleep(0.02)
        raise OpaStartFailed(f"opa did not become healthy within {timeout:g}s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.runtime_dir / "opa.log").read_text(errors="replace")[-500:].strip()
        except OSError:
            return ""

    async def _supervise(self) -> None:
        delay = self._backoff[0]
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.health.interval_s
        while not self._stopping:
            await asyncio.sleep(0.1)
            if self._stopping:
                return
            if not self.running:
                delay = await self._restart(delay)
                next_check = loop.time() + self.health.interval_s
            elif loop.time() >= next_check:
                await self._check_health()
                next_check = loop.time() + self.health.interval_s

    async def _restart(self, delay: float) -> float:
        """Restart the dead child after ``delay``; the next delay (doubled after a failed restart)."""
        self.healthy = False
        code = self._proc.returncode if self._proc else None
        log.warning("opa child exited (code %s); restarting in %.1fs", code, delay)
        await asyncio.sleep(delay)
        if self._stopping:
            return delay
        self.restarts += 1  # counted at spawn: requests may reach the new child before it is polled healthy
        try:
            await self._spawn()
        except (OpsgateError, OSError) as error:  # OSError: opa cannot even run (binary gone, no fork)
            log.error("opa restart failed: %s", error)
            return min(delay * 2, self._backoff[1])
        log.warning("opa child restarted (pid %s)", self.pid)
        return self._backoff[0]

    async def _check_health(self) -> None:
        """One /health check; a child unhealthy for ``restart_after_s`` is killed (and so restarted)."""
        if await probe_health(OpaHttpClient(self.address), self.health.timeout_s):
            if not self.healthy:
                log.warning("opa child healthy again (pid %s)", self.pid)
            self.healthy, self._unhealthy_since = True, None
            return
        now = asyncio.get_running_loop().time()
        if self._unhealthy_since is None:
            log.warning("opa child (pid %s) failed its health check", self.pid)
            self._unhealthy_since = now
        self.healthy = False
        if now - self._unhealthy_since >= self.health.restart_after_s and self._proc is not None:
            log.error(
                "opa child (pid %s) unhealthy for %.1fs: killing it to restart", self.pid, now - self._unhealthy_since
            )
            self._proc.kill()
            self.unhealthy_kills += 1
            self._unhealthy_since = None

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            self._supervisor = None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._proc.wait, 5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


# --- asking for a verdict -------------------------------------------------------


class _Answer(msgspec.Struct):
    result: Any = None


class _RawVerdict(msgspec.Struct):
    allow: bool
    violations: list[Violation] = []
    requires_approval: bool = False
    approvals: list[Violation] = []


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
        self.process = None if opa_url else OpaProcess(opa_bin or find_opa(), restart_backoff, health=self.health)
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
        """The verdicts for ``items``, in order, from ONE query of the ``batch`` entrypoint."""
        return await self._send(items) if items else []

    async def _send(self, items: list[dict[str, Any]]) -> list[Verdict]:
        """One OPA query for ``items`` through the breaker; any failure makes every verdict
        unavailable (fail closed) and counts towards opening the breaker."""
        permit = self.breaker.admit()
        if permit is None:
            return [self._unavailable(BREAKER_OPEN, OPEN)] * len(items)
        try:
            raws = await self._ask(items)
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
        return [self._verdict(raw, permit.state) for raw in raws]

    async def _ask(self, items: list[dict[str, Any]]) -> list[_RawVerdict]:
        if len(items) == 1:  # the plain entrypoint: no batch wrapping for a lone query
            raws = [await self._query(DECISION_PATH, {"input": items[0]}, self.timeout)]
        else:
            timeout = self.timeout * max(1.0, len(items) / _ITEMS_PER_TIMEOUT)
            raws = await self._query(BATCH_PATH, {"input": {"items": items}}, timeout)
        try:
            verdicts = msgspec.convert(raws, list[_RawVerdict])
        except msgspec.ValidationError as error:
            raise GuardrailsUnavailable(f"unexpected verdict shape: {error}") from None
        if len(verdicts) != len(items):
            raise GuardrailsUnavailable(f"OPA gave {len(verdicts)} verdicts for {len(items)} items")
        return verdicts

    def _unavailable(self, error: str, breaker: str) -> Verdict:
        return Verdict(available=False, revision=self.revision, error=error, breaker=breaker)

    async def _query(self, path: str, payload: dict[str, Any], timeout: float) -> Any:
        try:
            body = await asyncio.wait_for(self.client.post(path, encode(payload)), timeout=timeout)
        except TimeoutError:
            raise GuardrailsUnavailable(f"OPA did not answer within {timeout * 1000:g} ms") from None
        except OpaHttpError as error:
            raise GuardrailsUnavailable(str(error)) from None
        try:
            answer = _DECODE_ANSWER.decode(body)
        except msgspec.DecodeError as error:
            raise GuardrailsUnavailable(f"OPA's answer could not be read: {error}") from None
        if answer.result is None:
            raise GuardrailsUnavailable("OPA returned no result (is the guardrails entrypoint loaded?)")
        return answer.result

    def _verdict(self, raw: _RawVerdict, breaker: str) -> Verdict:
        locations = self.bundle.locations if self.bundle else {}

        def located(v: Violation) -> Violation:
            where = locations.get(location_key(v.id, v.title)) or locations.get(v.id)
            return msgspec.structs.replace(v, location=where)

        return Verdict(
            available=True,
            allow=raw.allow and not raw.violations,
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
