"""The README and docs/ hold together and agree with the code.

Every relative link and #anchor resolves (anchors by GitHub's heading-slug rules), every page of
docs/ is reachable from docs/README.md, the CLI synopsis in docs/cli.md lists exactly the parser's
commands and options, the error table in docs/http-api.md is exactly the codes the service can answer
(its error tree and the HTTP layer's own), and the module list in docs/architecture.md is exactly the
files of service/.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.cli.main import build_parser
from service.errors import OpsgateError
from service.http.errors import FRAMEWORK_FALLBACK, HTTP_CODES, UNEXPECTED

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONTENTS = DOCS / "README.md"
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`[^`]*`")
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks: headings and links inside a fence are not Markdown."""
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but '-' and '_' removed, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading counts by its text
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in _prose(text):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[str]:
    """The targets of the inline links outside code (a link's text may wrap onto the next line)."""
    prose = _CODE_SPAN.sub("", "\n".join(_prose(text)))
    return _LINK.findall(prose)


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of ``page`` whose file or #anchor does not exist, as 'target: why'."""
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if _SCHEME.match(target):
            continue  # http:, https:, mailto: are not checked here
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix != ".md":
            problems.append(f"{target}: an anchor into a file that is not Markdown")
        elif anchor and anchor not in anchors(resolved.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading with the anchor #{anchor} in {resolved.relative_to(root)}")
    return problems


def reachable(start: Path) -> set[Path]:
    """The Markdown pages reached from ``start`` by following relative links, transitively."""
    seen, todo = {start.resolve()}, [start.resolve()]
    while todo:
        page = todo.pop()
        for target in links(page.read_text(encoding="utf-8")):
            path_part = target.partition("#")[0]
            if _SCHEME.match(target) or not path_part.endswith(".md"):
                continue
            found = (page.parent / path_part).resolve()
            if found.exists() and found not in seen:
                seen.add(found)
                todo.append(found)
    return seen


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == [], f"broken links in {page.relative_to(ROOT)}"


def test_every_docs_page_is_reachable_from_the_contents_page() -> None:
    missing = sorted(str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md") if p.resolve() not in reachable(CONTENTS))
    assert missing == [], "not reachable from docs/README.md: link them from the contents page"


def test_the_readme_leads_to_the_contents_page() -> None:
    assert CONTENTS.resolve() in reachable(ROOT / "README.md")


def test_the_readme_stays_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 320, f"README.md has {lines} lines: move reference material into docs/"


def test_a_broken_file_link_and_a_broken_anchor_are_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Limits and bad input\n\n## Limits and bad input\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](other.md#limits-and-bad-input-1) [ok](#title) [ok](https://example.org/x#y)\n"
        "[gone](missing.md) [wrong](other.md#limits) `[in code](nowhere.md)`\n"
        "```\n[in a fence](nowhere.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "missing.md: no such file",
        "other.md#limits: no heading with the anchor #limits in other.md",
    ]


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("The Operations ruleset (`rules/ops.yaml`)", "the-operations-ruleset-rulesopsyaml"),
        ("The error_budget ruleset (`rules/error_budget.yaml`)", "the-error_budget-ruleset-ruleserror_budgetyaml"),
        ("What `opsgate check` reports", "what-opsgate-check-reports"),
        ("Previewing a change: replay and shadow", "previewing-a-change-replay-and-shadow"),
        ("Operations API (human approval)", "operations-api-human-approval"),
    ],
)
def test_anchors_follow_githubs_slug_rules(heading: str, expected: str) -> None:
    assert slug(heading) == expected


# --- the CLI synopsis (docs/cli.md) against the real parser ---------------------------------------


def _parser_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """Each leaf command ('log verify') and its option strings, without --help."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        options = {o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")}
        return {" ".join(path): options}
    found: dict[str, set[str]] = {}
    for name, child in subcommands[0].choices.items():
        found.update(_parser_commands(child, (*path, name)))
    return found


def _synopsis_commands() -> dict[str, set[str]]:
    """Each command of the first code block under '## Synopsis' in docs/cli.md, and its options."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    block = re.search(r"^## Synopsis\n.*?^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    assert block, "docs/cli.md has no '## Synopsis' heading followed by a code block"
    found: dict[str, set[str]] = {}
    for line in block.group(1).splitlines():
        words = line.split()
        assert words and words[0] == "opsgate", f"a synopsis line that is not an opsgate command: {line!r}"
        command = []
        for word in words[1:]:  # the command's words come before its first option or argument
            if not re.fullmatch(r"[a-z]+(-[a-z]+)*", word):
                break
            command.append(word)
        found.setdefault(" ".join(command), set()).update(re.findall(r"--[a-z][a-z0-9-]*", line))
    return found


def test_the_cli_synopsis_lists_every_command_and_option_of_the_parser() -> None:
    documented, actual = _synopsis_commands(), _parser_commands(build_parser())
    assert sorted(documented) == sorted(actual), "commands in docs/cli.md's synopsis differ from the parser's"
    for command, options in actual.items():
        missing, unknown = sorted(options - documented[command]), sorted(documented[command] - options)
        assert (missing, unknown) == ([], []), (
            f"opsgate {command}: docs/cli.md's synopsis lacks {missing} and lists {unknown}, unknown to the parser"
        )


def _error_classes(base: type[OpsgateError] = OpsgateError) -> Iterator[type[OpsgateError]]:
    yield base
    for child in base.__subclasses__():
        yield from _error_classes(child)


def _error_rows() -> set[tuple[int, str]]:
    """The (status, code) rows of docs/http-api.md's error table."""
    text = (DOCS / "http-api.md").read_text(encoding="utf-8")
    return {(int(status), code) for status, code in re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", text, re.M)}


def _answered_codes() -> set[tuple[int, str]]:
    """Every (status, code) opsgate can answer: its error tree, the HTTP framework's errors under their
    stable codes, the framework's other statuses and the unexpected exception (both at 500 in the table)."""
    tree = {(c.status, c.code) for c in _error_classes()}
    return tree | set(HTTP_CODES.items()) | {(500, FRAMEWORK_FALLBACK), (500, UNEXPECTED)}


def test_the_error_table_has_every_code_the_service_can_answer() -> None:
    missing = sorted(_answered_codes() - _error_rows())
    assert missing == [], "docs/http-api.md's error table lacks these (status, code) pairs"


def test_the_error_table_lists_no_code_the_service_does_not_have() -> None:
    unknown = sorted(_error_rows() - _answered_codes())
    assert unknown == [], "docs/http-api.md's error table lists (status, code) pairs that no error has"


# --- the module list (docs/architecture.md) against service/ -----------------------------------------


def _only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return not body or (len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant))


def _service_modules() -> set[str]:
    """Every service/**/*.py, but the __init__.py files that hold nothing but a docstring (their package's row)."""
    files = (ROOT / "service").rglob("*.py")
    return {p.relative_to(ROOT).as_posix() for p in files if not (p.name == "__init__.py" and _only_a_docstring(p))}


def _service_packages() -> set[str]:
    return {p.parent.relative_to(ROOT).as_posix() + "/" for p in (ROOT / "service").rglob("__init__.py")}


def _listed(section: str) -> set[str]:
    """The `service/…` names that start the table rows of one '## ' section of docs/architecture.md."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    body = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert body, f"docs/architecture.md has no '## {section}' section"
    return set(re.findall(r"^\| `(service/[^`]*)`", body.group(1), re.M))


def test_the_module_list_in_architecture_md_is_every_module_of_service() -> None:
    listed, actual = _listed("Modules"), _service_modules() | _service_packages()
    missing, extra = sorted(actual - listed), sorted(listed - actual)
    assert (missing, extra) == ([], []), (
        "docs/architecture.md '## Modules' is out of date:\n"
        + "".join(f"  missing (add a row): {name}\n" for name in missing)
        + "".join(f"  extra (remove its row): {name}\n" for name in extra)
    )


def test_every_service_path_the_docs_name_exists() -> None:
    named = {
        (page.relative_to(ROOT).as_posix(), path)
        for page in PAGES
        for path in re.findall(r"`(service/[\w/]+(?:\.py|/))`", page.read_text(encoding="utf-8"))
    }
    gone = sorted(f"{page}: {path}" for page, path in named if not (ROOT / path).exists())
    assert gone == [], "the docs name files of service/ that do not exist"
