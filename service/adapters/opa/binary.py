"""Finding the ``opa`` binary: an explicit path, an opa 1.x on PATH, or the build ``make opa`` caches."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from service.errors import OpaNotFound

OPA_VERSION = "1.4.2"


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
