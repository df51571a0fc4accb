"""docs/export.md's examples work as pasted: its sinks file configures a real ``serve`` (only the stream,
the subject and the receiver's address are the test's own), its /ready excerpt has the keys the service
reports, its JetStream consumer and its HMAC check run on what that service exported, and its
``opsgate log export`` and ``scripts/verify-export.py`` commands print what the page says."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.adapters.export.config import build_sinks, load_export_config
from service.errors import InvalidSettings
from service.ports.export import HttpSinkConfig, NatsSinkConfig
from tests.conftest import ROOT
from tests.e2e.hooks import HookReceiver
from tests.e2e.server import Server
from tests.e2e.test_export_nats import wait_for
from tests.e2e.test_ops_decisions import ops_facts

PAGE = ROOT / "docs" / "export.md"
SECRET = "siem-secret-for-the-test"
WRITER = "web-1"  # the page's writer
DECISIONS = 12


def blocks(language: str) -> list[str]:
    """The page's fenced blocks of ``language`` ("" for a bare fence), in order."""
    found: list[tuple[str, str]] = []
    opened: str | None = None
    for line in PAGE.read_text(encoding="utf-8").splitlines(keepends=True):
        if opened is None and line.startswith("```"):
            opened, text = line[3:].strip(), ""
        elif opened is not None and line.rstrip() == "```":
            found.append((opened, text))
            opened = None
        elif opened is not None:
            text += line
    return [text for fence, text in found if fence == language]


class Receiver(HookReceiver):
    """Keeps every POST's body and signature header, answers 204."""

    def __init__(self) -> None:
        self.posts: list[tuple[bytes, str]] = []
        super().__init__()

    def answer(self, body: bytes, headers: Any) -> int:
        self.posts.append((body, headers["X-Opsgate-Signature"]))
        return 204


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def sinks_file(stream: str, subject: str, receiver_url: str) -> str:
    """The page's sinks file, with the test's own stream, subject and receiver in place of the page's."""
    (page_config,) = blocks("yaml")
    assert "stream: OPSGATE_LOG " in page_config and "subject: opsgate.log " in page_config
    assert "url: https://siem.example/opsgate\n" in page_config
    return (
        page_config.replace("stream: OPSGATE_LOG ", f"stream: {stream} ")
        .replace("subject: opsgate.log ", f"subject: {subject} ")
        .replace("https://siem.example/opsgate", receiver_url)
    )


def test_the_documented_sinks_file_decodes_as_the_page_describes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "export.yaml"
    config.write_text(blocks("yaml")[0])
    monkeypatch.setenv("OPSGATE_SIEM_SECRET", SECRET)
    loaded = load_export_config(config)
    assert [type(sink) for sink in loaded.sinks] == [NatsSinkConfig, HttpSinkConfig]
    assert [sink.name for sink in loaded.sinks] == ["audit-stream", "siem"]
    assert (loaded.batch, loaded.poll_s, loaded.retry_max_s) == (500, 0.2, 2)
    assert [type(sink).__name__ for sink in build_sinks(loaded, config)] == ["JetStreamSink", "WebhookSink"]
    monkeypatch.delenv("OPSGATE_SIEM_SECRET")  # "a missing secret stops serve at start with the field"
    with pytest.raises(InvalidSettings, match=r"OPSGATE_SIEM_SECRET.*\$\.sinks\[1\]"):
        build_sinks(loaded, config)


def test_the_documented_consumer_checks_and_commands_verify_what_the_service_exported(
    tmp_path: Path, opa_bin: str, stream: tuple[str, str], receiver: Receiver
) -> None:
    name, subject = stream
    config = tmp_path / "export.yaml"
    config.write_text(sinks_file(name, subject, receiver.url))
    server = Server(
        tmp_path, ROOT / "rules", ROOT / "rego", opa_bin,
        OPSGATE_EXPORT_CONFIG=str(config), OPSGATE_WRITER_ID=WRITER, OPSGATE_SIEM_SECRET=SECRET,
    )  # fmt: skip
    try:
        for index in range(DECISIONS):
            assert server.client.post("/decide/ops", json=ops_facts(index)).status_code == 200

        def caught_up() -> dict[str, Any] | None:
            sinks = server.client.get("/ready").json()["export"]
            done = all(sink["ok"] and sink["lag"] == 0 for sink in sinks.values())
            return sinks if done and len(receiver.posts) >= DECISIONS else None

        sinks = wait_for(caught_up, 30, "both sinks acknowledge every record")
    finally:
        server.stop()

    # the page's /ready excerpt: its keys are the ones reported for each sink
    (ready_excerpt,) = (b for b in blocks("json") if '"export"' in b)
    documented = json.loads("{" + ready_excerpt + "}")["export"]["audit-stream"]
    assert set(sinks) == {"audit-stream", "siem"}
    assert set(sinks["audit-stream"]) == set(documented) and set(sinks["siem"]) == set(documented)
    assert sinks["audit-stream"]["exported_seq"] == DECISIONS

    consumer, hmac_check = blocks("python")
    # the JetStream consumer, on the test's own stream: the whole chain verifies, once each
    script = consumer.replace('"OPSGATE_LOG"', f'"{name}"').replace('"opsgate.log.>"', f'"{subject}.>"')
    assert script != consumer
    printed = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert printed == f"True None {{'{WRITER}': {DECISIONS}}} 0\n"

    # the receiver's HMAC check: every message the sink posted is genuine, a changed body is not
    scope: dict[str, Any] = {}
    exec(hmac_check, scope)  # noqa: S102 - the page's own example, run as pasted
    seqs = {json.loads(body)["seq"] for body, _ in receiver.posts}  # at least once: a resend may repeat one
    assert seqs == set(range(1, DECISIONS + 1))
    assert all(scope["genuine"](SECRET.encode(), body, header) for body, header in receiver.posts)
    body, header = receiver.posts[0]
    assert not scope["genuine"](SECRET.encode(), body.replace(b'"seq":1', b'"seq":2'), header)
    assert not scope["genuine"](b"another secret", body, header)

    # `opsgate log export` then `scripts/verify-export.py`, as the page writes them
    (export_command,) = re.findall(r"`(opsgate log export [^`]+)`", PAGE.read_text(encoding="utf-8"))
    assert export_command.startswith("opsgate log export --db var/decisions.db ")
    out = tmp_path / "export.jsonl"
    words = export_command.replace("var/decisions.db", server.db).replace("export.jsonl", str(out)).split()
    subprocess.run([sys.executable, "-m", "service", *words[1:]], cwd=ROOT, check=True, timeout=60)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["seq"] for m in lines if m["kind"] == "record"] == list(range(1, DECISIONS + 1))
    previous = "0" * 64
    for message in (m for m in lines if m["kind"] == "record"):  # "The message format", by hand
        assert list(message) == sorted(message) == ["body", "hash", "kind", "prev_hash", "seq", "writer"]
        assert message["prev_hash"] == previous
        assert message["hash"] == hashlib.sha256((previous + message["body"]).encode()).hexdigest()
        previous = message["hash"]

    (verify_block,) = [b for b in blocks("") if "scripts/verify-export.py" in b]
    command, *expected = verify_block.splitlines()
    assert command == "python3 scripts/verify-export.py export.jsonl"
    verified = subprocess.run(
        [sys.executable, "scripts/verify-export.py", str(out)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert expected == ["# writer web-1: 1000 records verified up to seq 1000", "# 0 checkpoint(s)"]
    assert verified.splitlines() == [
        f"writer {WRITER}: {DECISIONS} records verified up to seq {DECISIONS}",
        "0 checkpoint(s)",
    ]
