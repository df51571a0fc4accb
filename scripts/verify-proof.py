"""Check an opsgate inclusion proof without opsgate: python3 verify-proof.py PROOF.json PUBLIC_KEY.pem
Needs Python 3 and the `cryptography` package (Ed25519) only; the Merkle steps are RFC 9162 2.1.3.2."""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


proof = json.load(open(sys.argv[1], encoding="utf-8"))
point, record = proof["checkpoint"], proof["record"]
key = load_pem_public_key(open(sys.argv[2], "rb").read())
if point["key_id"] != hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]:
    sys.exit("FAILED: the checkpoint was signed by another key")
signed = {k: v for k, v in point.items() if k != "signature"}  # the signature covers the rest, canonical JSON
key.verify(base64.b64decode(point["signature"]),  # raises InvalidSignature when it does not hold
           json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
body = json.loads(record)
if (body["writer"], body["seq"]) != (point["writer"], proof["leaf_index"] + 1):
    sys.exit("FAILED: the record is not the proof's leaf")
chained = h((proof["prev_hash"] + record).encode())  # the chain hash (the log keeps it as hex)
fn, sn, r = proof["leaf_index"], point["tree_size"] - 1, h(b"\x00" + chained)  # the leaf hash
for p in map(bytes.fromhex, proof["audit_path"]):
    if sn == 0:
        sys.exit("FAILED: the audit path is too long")
    if fn & 1 or fn == sn:
        r = h(b"\x01" + p + r)
        while not fn & 1 and fn != 0:
            fn, sn = fn >> 1, sn >> 1
    else:
        r = h(b"\x01" + r + p)
    fn, sn = fn >> 1, sn >> 1
if sn != 0 or r.hex() != point["root_hash"]:
    sys.exit("FAILED: the record and its audit path do not lead to the signed root")
print(f"ok: decision {body['decision_id']} is record {body['seq']} of writer {point['writer']}, "
      f"in the tree of {point['tree_size']} records signed at {point['time']}")
