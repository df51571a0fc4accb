"""What the image test needs to build the Dockerfile with no registry and no network: a Debian root file
system with Python (mmdebstrap), a wheelhouse made on the host (pip wheel), the opa binary of
scripts/get-opa.sh, and podman with a storage, configuration and state of the test's own.

The root file system and the wheelhouse are cached under ~/.cache/opsgate/image/, each keyed by what it is
made from, so that only the first run pays for them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Iterable
from pathlib import Path

from tests.conftest import ROOT

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "opsgate" / "image"
SUITE = "bookworm"  # its python3 is 3.11, as in python:3.11-slim
# python3-venv brings pip for the image's virtual environment; passwd brings useradd
PACKAGES = ("python3", "python3-venv", "passwd")
# documentation and translations: a fifth of the tarball, and nothing the service reads
EXCLUDED = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")


def _key(parts: Iterable[object]) -> str:
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:16]


def _apt_mirror() -> str | None:
    """The Debian mirror this machine's apt uses (mmdebstrap's own default otherwise)."""
    for sources in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            words = line.split()
            if words[:1] == ["deb"] and not any("security" in word for word in words):
                return next(word for word in words[1:] if not word.startswith("["))
    return None


def debian_base() -> Path:
    """A tarball of a minimal Debian root file system with Python 3.11, made once by mmdebstrap (about 40 s)."""
    target = CACHE / f"debian-{SUITE}-{_key([SUITE, 'minbase', *PACKAGES, *EXCLUDED])}.tar"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.stem}.{os.getpid()}.partial.tar")
    mirror = _apt_mirror()
    command = [
        "mmdebstrap", "--quiet", "--variant=minbase", "--format=tar", f"--include={','.join(PACKAGES)}",
        *(f"--dpkgopt=path-exclude={path}" for path in EXCLUDED), SUITE, str(partial), *([mirror] if mirror else []),
    ]  # fmt: skip
    try:
        _run(command, timeout=600)
        os.replace(partial, target)  # atomic: a concurrent run sees the whole tarball or none
    finally:
        partial.unlink(missing_ok=True)
    return target


def wheelhouse() -> Path:
    """Wheels of the project's dependencies and build requirements for this Python, made once by pip wheel."""
    if sys.version_info[:2] != (3, 11):
        raise RuntimeError(f"the wheelhouse is built for the image's Python 3.11; this is {platform.python_version()}")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requirements = sorted([*project["project"]["dependencies"], *project["build-system"]["requires"]])
    target = CACHE / f"wheels-py311-{platform.machine()}-{_key(requirements)}"
    if target.is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = CACHE / f"{target.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--wheel-dir"]
        _run([*pip, str(partial), *requirements], timeout=600)
        try:
            os.rename(partial, target)
        except OSError:  # a concurrent run got there first: its wheelhouse is as good
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def opa_tarball(opa_bin: str, directory: Path) -> Path:
    """A root file system holding only /opa, as the official opa image has it."""
    tarball = directory / "opa.tar"
    with tarfile.open(tarball, "w") as archive:
        info = archive.gettarinfo(opa_bin, arcname="opa")
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, "root", "root"
        with open(opa_bin, "rb") as binary:
            archive.addfile(info, binary)
    return tarball


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[:3]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


# The machine's containers: runc, cgroupfs, no ulimits of the host's to copy, host networking, no journald.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{state}/tmp"
"""


class Podman:
    """podman on a storage of its own under ``home``: nothing the test makes is seen by, or collides with,
    any other podman user or concurrent run, and ``remove_everything`` leaves nothing behind."""

    def __init__(self, home: Path) -> None:
        self.home = home
        conf = home / "containers.conf"
        conf.write_text(CONTAINERS_CONF.format(state=home / "state"))
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.base = ["podman", "--root", str(home / "storage"), "--runroot", str(home / "state" / "run")]

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.base, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            said = f"{result.stdout}\n{result.stderr}"
            raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}:\n{said}")
        return result

    def remove_everything(self) -> None:
        """Containers, volumes and images, then the storage itself; each step even if one before failed."""
        for args in (["rm", "--all", "--force", "--time", "5"], ["volume", "rm", "--all", "--force"],
                     ["rmi", "--all", "--force"]):  # fmt: skip
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.run(*args, check=False)
        shutil.rmtree(self.home, ignore_errors=True)
