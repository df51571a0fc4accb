"""The policies of ``rego/`` as authored: the files that make up the served bundle, where each
rule is (from its ``# METADATA``), and what ``opa test`` said about them.

Reads files and text only; running ``opa`` is service/adapters/opa/.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec


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


class PolicyTests(msgspec.Struct, frozen=True):
    """What ``opa test`` said about the policies' own ``_test.rego`` files."""

    root: str
    passed: bool
    pass_count: int
    fail_count: int
    failures: list[str]  # "data.pkg.test_name (rego/...:line)"
    error: str | None = None


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
