"""Verify exported opsgate messages without opsgate: python3 verify-export.py export.jsonl (or - for stdin).

Each line is one message (`opsgate log export`, or what a NATS or HTTP sink received, in arrival
order).  Per writer, every record's hash must be sha256(prev_hash + body) and link to the one
before; a record delivered twice (at least once) is counted once, and one delivered again with
another hash is named."""
import hashlib
import json
import sys

lines = sys.stdin if sys.argv[1:] == ["-"] else open(sys.argv[1], encoding="utf-8")
heads, counts, hashes, checkpoints = {}, {}, {}, 0
for number, line in enumerate(lines, 1):
    message = json.loads(line)
    if message["kind"] == "checkpoint":
        checkpoints += 1
        continue
    writer, seq, prev_hash, digest = message["writer"], message["seq"], message["prev_hash"], message["hash"]
    where = f"line {number} (writer {writer}, seq {seq})"
    if hashlib.sha256((prev_hash + message["body"]).encode()).hexdigest() != digest:
        sys.exit(f"{where}: the hash does not match the body")
    last_seq, last_hash = heads.get(writer, (None, None))
    if last_seq is not None and seq <= last_seq:
        if hashes[writer].get(seq, digest) != digest:
            sys.exit(f"{where}: two records: another hash than the one delivered before")
        continue  # delivered again
    if last_seq is None and seq == 1 and prev_hash != "0" * 64:
        sys.exit(f"{where}: the chain's first record does not start from 64 zeros")
    if last_seq is not None and (seq != last_seq + 1 or prev_hash != last_hash):
        sys.exit(f"{where}: does not follow seq {last_seq}: a record is missing or altered")
    heads[writer], counts[writer] = (seq, digest), counts.get(writer, 0) + 1
    hashes.setdefault(writer, {})[seq] = digest
for writer, count in sorted(counts.items()):
    print(f"writer {writer}: {count} records verified up to seq {heads[writer][0]}")
print(f"{checkpoints} checkpoint(s)")
