"""Property: whatever text an author writes, the expression parser either parses it or raises its
positioned error (an ExpressionError whose offset lies within the text); it never crashes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain import expr
from service.errors import ExpressionError

# the grammar's tokens (service/domain/expr.py), a few near misses, and names the rules use
TOKENS = [
    "and", "or", "not", "in", "not in", "true", "false", "null", "==", "!=", "<", "<=", ">", ">=",
    "+", "-", "*", "/", "%", "**", "(", ")", "[", "]", ",", ".", "0", "1", "2.5", ".5", "1e3", "1e",
    "9" * 5000, '"s"', "'t'", '"\\"', "'", '"', "process", "attempts", "params", "item", "min", "max",
    "len", "filter", "sort", "round", "first", "str", "_x", "=", "!", "&&", "|", "@", "\\", "\n", " ",
]  # fmt: skip

SETTINGS = settings(
    max_examples=400, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def parses_or_points_within(source: str) -> None:
    try:
        node = expr.parse(source)
    except ExpressionError as error:
        assert 0 <= error.offset <= len(source), (source, error.offset)
        assert error.reason
    else:
        assert isinstance(node, expr.Node)
        assert 0 <= node.pos < len(source)


@SETTINGS
@given(st.text())
def test_arbitrary_text_parses_or_gives_a_positioned_error(source: str) -> None:
    parses_or_points_within(source)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.sampled_from([" ", ""]))
def test_strings_of_grammar_tokens_parse_or_give_a_positioned_error(tokens: list[str], separator: str) -> None:
    parses_or_points_within(separator.join(tokens))


@SETTINGS
@given(st.sampled_from(["(", "[", "-", "not ", "f(", "[1, "]), st.integers(min_value=1, max_value=3000))
def test_deep_nesting_parses_or_gives_a_positioned_error(opener: str, depth: int) -> None:
    parses_or_points_within(opener * depth + "1")
