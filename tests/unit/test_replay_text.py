"""`opsgate replay`'s text report: the flip matrix printed one block per ruleset, each as narrow as its
own decision types allow (numbered columns where the names would pass 100 characters), never one
matrix as wide as every type of the log."""

from __future__ import annotations

from service.cli.replay import render_text
from service.usecases.flips import Flip
from service.usecases.replay import ReplayReport

DEPLOY = [
    "DEPLOY.ESCALATE", "DEPLOY.FINE_TUNING", "DEPLOY.GENERATED_CODE", "DEPLOY.MODEL_CONFIG",
    "DEPLOY.NEW_MODEL", "DEPLOY.PROMPT_UPDATE", "DEPLOY.SECURITY_HOTFIX",
]  # fmt: skip
OPS = ["OPS.DISPATCH", "OPS.ESCALATE", "OPS.REASSIGN", "OPS.RETRY"]


def report() -> ReplayReport:
    matrix = {
        "OPS.DISPATCH": {"OPS.DISPATCH": 91},
        "OPS.ESCALATE": {"OPS.DISPATCH": 31, "OPS.ESCALATE": 531, "OPS.RETRY": 30},
        "OPS.REASSIGN": {"OPS.REASSIGN": 141},
        "DEPLOY.NEW_MODEL": {"DEPLOY.NEW_MODEL": 12, "DEPLOY.ESCALATE": 3},
        **{t: {t: 2} for t in DEPLOY if t != "DEPLOY.NEW_MODEL"},
    }
    flips = [Flip("OPS.ESCALATE", "OPS.DISPATCH", 31, [])]
    return ReplayReport(
        "c0ffee", "sqlite:var/decisions.db", 839, 64, 0, matrix, flips, [], {"deploy": DEPLOY, "ops": OPS}
    )


def test_each_ruleset_is_a_block_of_its_own_with_its_counts() -> None:
    lines = render_text(report()).splitlines()
    assert lines[:3] == [
        "candidate c0ffee",
        "log sqlite:var/decisions.db",
        "replayed 839, changed 64, not replayable 0",
    ]
    assert "deploy: replayed 27, changed 3" in lines and "ops: replayed 824, changed 61" in lines
    ops = lines.index("ops: replayed 824, changed 61")
    assert lines[ops + 1].split() == ["old", "\\", "new", *OPS]
    assert [line.split() for line in lines[ops + 2 : ops + 6]] == [
        ["OPS.DISPATCH", "91", "0", "0", "0"],
        ["OPS.ESCALATE", "31", "531", "0", "30"],
        ["OPS.REASSIGN", "0", "0", "141", "0"],
        ["OPS.RETRY", "0", "0", "0", "0"],
    ]
    assert lines[ops + 3] == "OPS.ESCALATE            31           531             0         30"


def test_a_ruleset_whose_type_names_would_pass_100_characters_numbers_its_columns() -> None:
    lines = render_text(report()).splitlines()
    deploy = lines.index("deploy: replayed 27, changed 3")
    assert lines[deploy + 1].split() == ["old", "\\", "new", "1", "2", "3", "4", "5", "6", "7"]
    assert lines[deploy + 2].split() == ["1", "DEPLOY.ESCALATE", "2", "0", "0", "0", "0", "0", "0"]
    assert lines[deploy + 6].split() == ["5", "DEPLOY.NEW_MODEL", "3", "0", "0", "0", "12", "0", "0"]


def test_no_line_of_the_matrices_is_wider_than_100_characters() -> None:
    text = render_text(report())
    matrix_lines = [line for line in text.splitlines() if "->" not in line]
    assert max(len(line) for line in matrix_lines) <= 100


def test_an_empty_replay_says_so() -> None:
    empty = ReplayReport("c0ffee", "sqlite:x.db", 0, 0, 0, {}, [], [])
    assert render_text(empty).splitlines()[3:] == ["", "(no decisions replayed)"]
