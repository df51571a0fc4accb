"""The consumer's check of exported messages, and the export config file's refusals."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from service.adapters.export.config import build_sinks, load_export_config
from service.adapters.export.webhook import signature
from service.domain.export import CheckpointMessage, RecordMessage, decode, encode, verify_stream
from service.errors import InvalidSettings
from service.settings import Settings, checkpoints_path

ZEROS = "0" * 64


def chain(writer: str, count: int, start: int = 1, prev: str = ZEROS) -> list[RecordMessage]:
    out = []
    for seq in range(start, start + count):
        body = f'{{"kind":"decision","seq":{seq},"writer":"{writer}"}}'
        digest = hashlib.sha256((prev + body).encode()).hexdigest()  # written out: sha256(prev_hash + body)
        out.append(RecordMessage(writer=writer, seq=seq, prev_hash=prev, hash=digest, body=body))
        prev = digest
    return out


def test_interleaved_writers_with_resends_verify_and_count_each_record_once() -> None:
    a, b = chain("a", 4), chain("b", 2)
    stream = [a[0], b[0], a[1], a[0], a[1], a[2], b[1], CheckpointMessage(name="x.json", body="{}"), a[3], b[1]]
    report = verify_stream(stream)
    assert (report.ok, report.error, report.records, report.duplicates, report.checkpoints) == (
        True, None, {"a": 4, "b": 2}, 3, 1,
    )  # fmt: skip


def test_a_missing_record_is_named_with_the_gap() -> None:
    a = chain("a", 5)
    report = verify_stream([a[0], a[1], a[4]])
    assert (report.ok, report.error, report.records) == (
        False,
        "writer a seq 5: after seq 2: records 3..4 are missing",
        {"a": 2},
    )


def test_an_altered_body_a_broken_link_and_a_forged_start_are_named() -> None:
    a = chain("a", 3)
    altered = RecordMessage(
        writer="a", seq=2, prev_hash=a[1].prev_hash, hash=a[1].hash, body=a[1].body.replace("2", "9")
    )
    assert verify_stream([a[0], altered]).error == "writer a seq 2: its hash does not match its body (altered)"
    other = chain("a", 2, start=2, prev="f" * 64)  # records 2 and 3 of some other chain
    assert verify_stream([a[0], *other]).error == "writer a seq 2: prev_hash does not link to seq 1's hash"
    forged = chain("a", 1, prev="f" * 64)
    assert verify_stream(forged).error == "writer a seq 1: the chain's first record does not link to GENESIS"


def other_chain(writer: str, count: int) -> list[RecordMessage]:
    """Another chain under the same writer id (two replicas configured alike): other bodies, own hashes."""
    out, prev = [], ZEROS
    for message in chain(writer, count):
        body = message.body.replace('"kind":"decision"', '"kind":"decision","replica":"b"')
        digest = hashlib.sha256((prev + body).encode()).hexdigest()
        out.append(RecordMessage(writer=writer, seq=message.seq, prev_hash=prev, hash=digest, body=body))
        prev = digest
    return out


def test_an_earlier_seq_delivered_again_with_another_hash_is_named_not_counted_as_a_duplicate() -> None:
    a, b = chain("a", 3), other_chain("a", 2)
    report = verify_stream([*a, a[0], b[0], b[1]])
    assert (report.ok, report.error, report.records, report.duplicates) == (
        False, "writer a seq 1: two records (another hash than the one delivered before)", {"a": 3}, 1,
    )  # fmt: skip


def test_the_standalone_script_names_an_earlier_seq_delivered_again_with_another_hash(tmp_path: Path) -> None:
    a, b = chain("a", 3), other_chain("a", 2)
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(encode(m) + b"\n" for m in [*a, a[1], b[0]]))
    script = Path(__file__).resolve().parents[2] / "scripts" / "verify-export.py"
    result = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr == "line 5 (writer a, seq 1): two records: another hash than the one delivered before\n"


def test_a_stream_may_start_mid_chain_and_messages_round_trip() -> None:
    tail = chain("a", 3, start=10, prev="e" * 64)
    report = verify_stream([decode(encode(m)) for m in tail])
    assert (report.ok, report.first_seq, report.records) == (True, {"a": 10}, {"a": 3})
    assert encode(tail[0]).startswith(b'{"body":"{\\"kind\\":\\"decision\\",\\"seq\\":10,')


def test_the_signature_is_an_hmac_sha256_of_the_body() -> None:
    # RFC 4231 test case 2
    assert signature(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sinks:\n  - kind: kafka\n    name: k\n", "Invalid value 'kafka' - at `$.sinks[0].kind`"),
        ("sinks:\n  - kind: http\n    url: http://x/\n", "Object missing required field `name` - at `$.sinks[0]`"),
        ("sinks:\n  - {kind: nats, name: s}\n  - {kind: nats, name: s}\n", "sink names must differ"),
        ("sinks: []\nbatch: 0\n", "Expected `int` >= 1 - at `$.batch`"),
        ("sinks:\n  - {kind: http, name: h, url: 'ftp://x/', secret_env: HOME}\n", "url must be http:// or https://"),
        ("sinks:\n  - {kind: http, name: h, url: 'http://x/', secret_env: OPSGATE_UNSET_SECRET}\n",
         "the secret in variable OPSGATE_UNSET_SECRET is missing or empty"),
        ("sinks:\n  - {kind: http, name: h, url: 'http://x/'}\n", "set exactly one of secret_env and secret_file"),
    ],
)  # fmt: skip
def test_a_bad_export_config_is_refused_with_the_field_and_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "export.yaml"
    path.write_text(text)
    with pytest.raises(InvalidSettings) as raised:
        build_sinks(load_export_config(path), path)
    assert reason in raised.value.message and str(path) in raised.value.message


@pytest.mark.parametrize(
    ("db", "configured", "expected"),
    [
        ("var/decisions.db", None, Path("var/checkpoints")),
        ("sqlite:/srv/opsgate/log.db", None, Path("/srv/opsgate/checkpoints")),
        ("postgresql://opsgate@db/opsgate", None, Path("var/checkpoints")),
        ("postgresql://opsgate@db/opsgate", "/srv/checkpoints", Path("/srv/checkpoints")),
    ],
)
def test_the_checkpoints_directory_defaults_to_beside_a_sqlite_log(
    db: str, configured: str | None, expected: Path
) -> None:
    assert checkpoints_path(Settings(db=db, checkpoints_dir=configured)) == expected
