"""Verify an opsgate decision log (SQLite) without opsgate: python3 verify-chain.py var/decisions.db"""
import hashlib
import sqlite3
import sys
import zlib

db = sqlite3.connect(sys.argv[1])
blobs = dict(db.execute("SELECT sha256, content FROM blobs"))  # compressed bodies' preset dictionaries among them
writer, seq, prev, count = None, 0, "0" * 64, 0
for row_id, row_writer, row_seq, body, prev_hash, digest in db.execute(
    "SELECT id, writer, seq, body, prev_hash, hash FROM log_entries ORDER BY writer, seq"
):
    if row_writer != writer:  # each writer (replica) has its own chain, starting from 64 zeros
        writer, seq, prev = row_writer, 0, "0" * 64
    if isinstance(body, bytes):  # a decision: 0x01, the sha256 of its zlib dictionary (a blobs row), zlib data
        try:
            body = zlib.decompressobj(zdict=blobs.get(body[1:33].hex(), b"?")).decompress(body[33:]).decode()
        except (zlib.error, ValueError):  # corrupt, or its dictionary altered: no hash matches
            body = ""
    ok = row_seq == seq + 1 and prev_hash == prev
    if not ok or hashlib.sha256((prev_hash + body).encode()).hexdigest() != digest:
        sys.exit(f"record #{row_id} (writer {row_writer}, seq {row_seq}): broken chain")
    writer, seq, prev, count = row_writer, row_seq, digest, count + 1
print(f"{count} records verified, chain intact")
