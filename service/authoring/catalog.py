"""Everything one version serves: the rulesets of ``rules/`` and the policies of ``rego/``."""

from __future__ import annotations

from pathlib import Path

import msgspec

from service.authoring.policies import PolicyBundle, read_policies
from service.authoring.rulesets import parse_ruleset
from service.domain.ruleset import Ruleset, content_hash
from service.errors import Problem, RulesetInvalid, UnknownRuleset


class Catalog(msgspec.Struct, frozen=True):
    rulesets: dict[str, Ruleset]
    policies: PolicyBundle
    version: str  # over every ruleset file and every policy file: the bundle revision
    files: tuple[tuple[str, bytes], ...] = ()  # what the version hashes: (rules/<name>.yaml | rego/..., content)

    @property
    def ruleset_versions(self) -> dict[str, str]:
        return {name: ruleset.version for name, ruleset in self.rulesets.items()}

    @property
    def warnings(self) -> list[Problem]:
        """What ``opsgate check`` warns about (see service/domain/lint.py); never blocks serving."""
        return [warning for name in sorted(self.rulesets) for warning in self.rulesets[name].warnings]

    def get(self, name: str) -> Ruleset:
        ruleset = self.rulesets.get(name)
        if ruleset is None:
            known = ", ".join(sorted(self.rulesets)) or "none"
            raise UnknownRuleset(f"unknown ruleset {name!r} (known: {known})")
        return ruleset


def ruleset_files(rules_dir: Path) -> list[Path]:
    return sorted(p for p in rules_dir.glob("*.yaml") if p.is_file())


def load_catalog(rules_dir: Path, rego_dir: Path) -> Catalog:
    """Load every ruleset; raises RulesetInvalid with every problem found."""
    policies = read_policies(rego_dir)
    problems: list[Problem] = []
    rulesets: dict[str, Ruleset] = {}
    files = ruleset_files(rules_dir)
    contents = [(f"rules/{path.name}", path.read_bytes()) for path in files]
    for path, (stored_as, content) in zip(files, contents, strict=True):
        display = f"{rules_dir.name}/{path.name}"
        try:
            ruleset = parse_ruleset(content, display, policies.hashed, hashed_as=stored_as)
        except RulesetInvalid as error:
            problems.extend(error.problems)
            continue
        if ruleset.name != path.stem:
            problems.append(
                Problem(
                    f"ruleset name {ruleset.name!r} must match its file name {path.stem!r}",
                    file=display,
                    line=1,
                    column=1,
                )
            )
        rulesets[ruleset.name] = ruleset
    if not files:
        problems.append(Problem(f"no ruleset files (*.yaml) in {rules_dir}", file=str(rules_dir)))
    if problems:
        raise RulesetInvalid(f"{len(problems)} problem(s) in {rules_dir}", problems)
    hashed = (*contents, *policies.hashed)
    return Catalog(rulesets, policies, content_hash(hashed), hashed)
