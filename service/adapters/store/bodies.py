"""How a record's body is stored: decision bodies compressed in SQLite, every reader handed the text.

The chain hash covers the canonical text, whatever the storage. On SQLite a decision's body is a
BLOB in the same ``body`` column: one format byte, the 32-byte sha256 of a preset dictionary, and
zlib data. The dictionary is another decision body of the same ruleset version (the first one a
writer process writes for it, itself stored as text), kept once by sha256 in ``blobs`` and written
in the transaction of every record that uses it (a no-op once it is there). Decisions of one
ruleset version share most of their text, so a body of 1.7 KB takes about 70 bytes.

Every other body (approvals, expiries, outcomes: read by ``json_extract`` in SQL), and every body on
PostgreSQL (which compresses large values itself), stays text; a text body reads back unchanged.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

from service.domain.record import UNREADABLE, StoredRecord

FORMAT = 1  # the first byte of a compressed body: zlib with the preset dictionary named next
_DIGEST = 32
_LEVEL = 6  # 14% smaller than level 1 on decision bodies, for about the same CPU (bench/logsize.py)
_WINDOW = 13  # 8 KB: a dictionary and a body of up to 4 KB each; a larger window costs its allocation
_KEPT = 64  # dictionaries a writer keeps (one per ruleset version it decided with)
_INSERT_DICTIONARY = "INSERT INTO blobs (sha256, content) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING"
_DICTIONARY = "SELECT content FROM blobs WHERE sha256 = ?"

_read_cache: dict[str, bytes] = {}  # sha256 -> dictionary; content-addressed, so any log's reader may share it


class Encoder:
    """One writer's storage of bodies: which dictionary each ruleset version's decisions use."""

    def __init__(self, dialect_name: str) -> None:
        self.enabled = dialect_name == "sqlite"
        self._dictionaries: dict[tuple[str | None, str | None], tuple[bytes, bytes]] = {}

    def encode(self, connection: Any, kind: str, version: tuple[str | None, str | None], body: str) -> str | bytes:
        """The value to store for ``body`` (canonical text) of a ``kind`` record decided with ``version``
        (ruleset name and version), inside the transaction that writes it."""
        if not self.enabled or kind != "decision":
            return body
        data = body.encode()
        known = self._dictionaries.get(version)
        if known is None:
            if len(self._dictionaries) >= _KEPT:
                del self._dictionaries[next(iter(self._dictionaries))]
            self._dictionaries[version] = (hashlib.sha256(data).digest(), data)
            return body
        digest, dictionary = known
        connection.execute(_INSERT_DICTIONARY, (digest.hex(), dictionary))
        return compress(data, digest, dictionary)


def compress(data: bytes, digest: bytes, dictionary: bytes) -> bytes:
    """``data`` as a stored body: the format byte, the dictionary's sha256, zlib data."""
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WINDOW, 8, zlib.Z_DEFAULT_STRATEGY, dictionary)
    return bytes((FORMAT,)) + digest + packer.compress(data) + packer.flush()


def decoded(connection: Any, value: Any) -> str:
    """The canonical text of a stored body (read through ``connection``'s ``blobs``); a body that
    cannot be decoded (a missing or altered dictionary, corrupt data) reads as ``UNREADABLE`` and the
    reason, which no record hashes to: verification names the record instead of failing."""
    if isinstance(value, str):
        return value
    data = bytes(value)
    try:
        if len(data) <= 1 + _DIGEST or data[0] != FORMAT:
            raise ValueError(f"unknown format {data[:1].hex() or 'empty'}")
        key = data[1 : 1 + _DIGEST].hex()
        dictionary = _read_cache.get(key) or _load(connection, key)
        unpacker = zlib.decompressobj(15, dictionary)
        text = unpacker.decompress(data[1 + _DIGEST :]) + unpacker.flush()
        if not unpacker.eof:
            raise ValueError("truncated data")
        return text.decode()
    except (ValueError, zlib.error) as error:  # UnicodeDecodeError is a ValueError
        return f"{UNREADABLE}{error}"


def _load(connection: Any, key: str) -> bytes:
    row = connection.execute(_DICTIONARY, (key,)).fetchone()
    if row is None:
        raise ValueError(f"dictionary {key[:12]}… is missing from blobs")
    dictionary = bytes(row[0])
    if hashlib.sha256(dictionary).hexdigest() != key:
        raise ValueError(f"dictionary {key[:12]}… in blobs does not match its sha256 (it was altered)")
    if len(_read_cache) >= 4 * _KEPT:
        _read_cache.clear()
    _read_cache[key] = dictionary
    return dictionary


def stored(connection: Any, row: Any) -> StoredRecord:
    """A row of ``RECORD_COLUMNS`` as the record it holds, its body decoded."""
    return StoredRecord(row[0], row[1], row[2], decoded(connection, row[3]), *row[4:])


def register(connection: Any) -> None:
    """``opsgate_body(body)`` in SQL on a SQLite ``connection``: the body's text (for ``json_extract``)."""
    connection.create_function("opsgate_body", 1, lambda value: decoded(connection, value), deterministic=True)
