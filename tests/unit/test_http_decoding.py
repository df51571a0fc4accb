"""Handlers decode: query strings and bodies become typed values in service/http, with 400/422 naming the field."""

from __future__ import annotations

import json

import pytest

from service.errors import BadRequest, InvalidBody, PayloadTooLarge
from service.http.bodies import MAX_BATCH, approval_request, batch_items, outcome_request
from service.http.queries import dashboard_window, decision_query, explain_full, pending_limit

AT = "2026-11-21T10:00:00.000000+00:00"


def test_the_dashboard_window_defaults_to_the_hour_ending_now() -> None:
    assert dashboard_window({}, AT) == ("2026-11-21T09:00:00.000000+00:00", AT)


def test_the_dashboard_window_takes_since_and_until_in_the_logs_utc_form() -> None:
    window = dashboard_window({"since": "2026-11-21T09:30:00Z", "until": "2026-11-21T11:30:00+01:00"}, AT)
    assert window == ("2026-11-21T09:30:00.000000+00:00", "2026-11-21T10:30:00.000000+00:00")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"window": "0m"},
            "invalid query parameter window: a positive whole number and a unit s, m, h or d (e.g. 15m, 1h, 7d)",
        ),
        ({"window": "32d"}, "invalid query parameter window: at most 31 days"),
        ({"window": "1h", "since": AT}, "invalid query parameter window: give either window or since, not both"),
        ({"since": "soon"}, "invalid query parameter since: not an RFC 3339 time (e.g. 2026-11-21T09:30:00Z)"),
        ({"since": "2027-01-01T00:00:00Z"}, "invalid query parameter since: must be before until"),
        ({"span": "1h"}, "invalid query parameter span: unknown field"),
    ],
)
def test_a_wrong_dashboard_parameter_is_a_400_naming_it(params: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest) as raised:
        dashboard_window(params, AT)
    assert raised.value.message == message
    assert raised.value.problems[0].path == message.split()[3].rstrip(":")


def test_explain_is_full_or_absent() -> None:
    assert (explain_full({}), explain_full({"explain": "full"})) == (False, True)
    with pytest.raises(BadRequest, match="invalid query parameter explain: the only value is 'full'"):
        explain_full({"explain": "yes"})


def test_decision_filters_are_checked_but_passed_on_as_given() -> None:
    assert decision_query({"since": "2026-11-21T09:30:00Z", "limit": "5"}).since == "2026-11-21T09:30:00Z"
    with pytest.raises(BadRequest, match="invalid query parameter until: not an RFC 3339 time"):
        decision_query({"until": "later"})


def test_the_pending_page_is_1_to_500_items() -> None:
    assert (pending_limit({}), pending_limit({"limit": "500"})) == (100, 500)
    with pytest.raises(BadRequest, match="invalid query parameter limit: Expected `int` <= 500"):
        pending_limit({"limit": "501"})


def test_an_approval_needs_a_reason_that_is_not_blank() -> None:
    assert approval_request(b'{"reason": "checked the runbook"}').reason == "checked the runbook"
    with pytest.raises(InvalidBody) as raised:
        approval_request(b'{"reason": "  "}')
    assert (raised.value.message, raised.value.problems[0].path) == (
        "invalid approval: reason: blank: say why",
        "reason",
    )


def test_an_outcome_names_its_wrong_status() -> None:
    assert outcome_request(b'{"status": "FAILED"}').detail == ""
    with pytest.raises(InvalidBody, match="invalid outcome: status: Invalid enum value 'MAYBE'"):
        outcome_request(b'{"status": "MAYBE"}')


def test_a_batch_holds_1_to_max_batch_items() -> None:
    assert len(batch_items(b'{"items": [{}, {"a": 1}]}')) == 2
    with pytest.raises(InvalidBody, match="invalid batch: items: empty"):
        batch_items(b'{"items": []}')
    with pytest.raises(PayloadTooLarge, match=f"batch too large: {MAX_BATCH + 1} items"):
        batch_items(json.dumps({"items": [{}] * (MAX_BATCH + 1)}).encode())
    with pytest.raises(BadRequest, match="malformed JSON"):
        batch_items(b"{")
