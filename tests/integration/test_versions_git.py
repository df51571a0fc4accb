"""A version loaded from a git checkout records its commit; one loaded elsewhere records none."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from service import bootstrap
from service.settings import Settings
from tests.conftest import REGO_DIR, RULES_DIR


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=Ada Reviewer", "-c", "user.email=ada@example.org"]
    done = subprocess.run(["git", *identity, "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def loaded_versions(rules: Path, rego: Path, db: Path, opa_bin: str) -> list[dict[str, object]]:
    settings = Settings(db=str(db), rules_dir=rules, rego_dir=rego, opa_bin=opa_bin)

    async def run() -> list[dict[str, object]]:
        running = await bootstrap.start(settings)
        try:
            return (await running.runtime.review.versions())["versions"]  # type: ignore[no-any-return]
        finally:
            await running.close()

    return asyncio.run(run())


def test_a_version_from_a_git_checkout_records_commit_author_date_and_subject(tmp_path: Path, opa_bin: str) -> None:
    repo = tmp_path / "policies"
    shutil.copytree(RULES_DIR, repo / "rules")
    shutil.copytree(REGO_DIR, repo / "rego")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Raise the retry budget")
    commit = git(repo, "rev-parse", "HEAD")
    versions = loaded_versions(repo / "rules", repo / "rego", tmp_path / "d.db", opa_bin)
    assert len(versions) == 1 and versions[0]["current"] is True
    recorded = versions[0]["git"]
    assert isinstance(recorded, dict)
    assert recorded["commit"] == commit
    assert recorded["author"] == "Ada Reviewer <ada@example.org>"
    assert recorded["subject"] == "Raise the retry budget"
    assert recorded["date"] == git(repo, "log", "-1", "--format=%aI")
    assert recorded["dirty"] is False

    (repo / "rules" / "ops.yaml").write_text((repo / "rules" / "ops.yaml").read_text() + "\n# local edit\n")
    versions = loaded_versions(repo / "rules", repo / "rego", tmp_path / "d.db", opa_bin)
    edited = next(v for v in versions if v["current"])
    assert edited["git"]["dirty"] is True  # type: ignore[index]
    assert len(versions) == 2


def test_a_version_outside_git_has_no_commit(copied_dirs: tuple[Path, Path], tmp_path: Path, opa_bin: str) -> None:
    rules, rego = copied_dirs
    versions = loaded_versions(rules, rego, tmp_path / "d.db", opa_bin)
    assert [v["git"] for v in versions] == [None]
