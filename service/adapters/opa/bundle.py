"""The policy bundle on disk, as ``opa run --bundle`` reads it: the files and a ``.manifest``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from service.authoring.policies import PolicyBundle


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
