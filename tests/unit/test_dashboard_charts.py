"""The dashboard's timeline buckets and its SVG charts, with hand-written expectations."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from service.http import charts
from service.usecases.dashboard import bucket_of, timeline
from service.usecases.status import STATUSES

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("since", "until", "bucket"),
    [
        ("2026-11-21T09:00:00.000000+00:00", "2026-11-21T10:00:00.000000+00:00", "minute"),
        ("2026-11-21T09:00:00.000000+00:00", "2026-11-21T10:00:00.000001+00:00", "hour"),
        ("2026-11-21T09:00:00.000000+00:00", "2026-11-24T09:00:00.000000+00:00", "hour"),
        ("2026-11-21T09:00:00.000000+00:00", "2026-11-24T09:00:01.000000+00:00", "day"),
    ],
)
def test_the_bucket_is_a_minute_up_to_an_hour_an_hour_up_to_three_days_else_a_day(
    since: str, until: str, bucket: str
) -> None:
    assert bucket_of(since, until) == bucket


def test_the_timeline_lists_every_bucket_of_the_window_empty_ones_too() -> None:
    counts = {"2026-11-21T09:41": {"ESCALATED": 1, "APPROVED": 2}}
    series = timeline(counts, "2026-11-21T09:40:30.000000+00:00", "2026-11-21T09:43:00.000000+00:00", "minute")
    assert series == [
        {"start": "2026-11-21T09:40", "total": 0, "by_status": {}},
        {"start": "2026-11-21T09:41", "total": 3, "by_status": {"APPROVED": 2, "ESCALATED": 1}},
        {"start": "2026-11-21T09:42", "total": 0, "by_status": {}},
    ]
    days = timeline({}, "2026-11-21T09:40:30.000000+00:00", "2026-11-23T00:00:00.000000+00:00", "day")
    assert [item["start"] for item in days] == ["2026-11-21", "2026-11-22"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.4, "0 s"), (59.9, "59 s"), (60, "1 min 0 s"), (3599.5, "59 min 59 s"), (3660, "1 h 1 min"),
     (90000, "1 d 1 h"), (-75, "-1 min 15 s")],
)  # fmt: skip
def test_durations_read_as_a_person_says_them(seconds: float | None, text: str) -> None:
    assert charts.duration(seconds) == text


def texts(svg: str, css: str) -> list[str]:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == css]


def test_the_timeline_chart_stacks_each_bucket_by_status_with_its_total_and_legend() -> None:
    series = [
        {"start": "2026-11-21T09:40", "total": 0, "by_status": {}},
        {"start": "2026-11-21T09:41", "total": 3, "by_status": {"APPROVED": 2, "ESCALATED": 1}},
    ]
    svg = charts.timeline(series, "minute", ["APPROVED", "ESCALATED"])
    root = ET.fromstring(svg)
    bars = [g for g in root.iter(f"{SVG}g") if g.get("class") == "bar"]
    assert [(g.get("data-start"), g.get("data-total")) for g in bars] == [
        ("2026-11-21T09:40", "0"), ("2026-11-21T09:41", "3")
    ]  # fmt: skip
    assert [r.get("fill") for r in bars[1].iter(f"{SVG}rect")] == ["#2e8540", "#c0392b"]
    assert [t.text for t in bars[1].iter(f"{SVG}title")] == [
        "2026-11-21T09:41 APPROVED: 2",
        "2026-11-21T09:41 ESCALATED: 1",
    ]
    assert texts(svg, "total") == ["3"]
    assert texts(svg, "tick") == ["09:40", "09:41"]
    assert texts(svg, "legend") == ["APPROVED 2", "ESCALATED 1"]


def test_bar_labels_are_escaped_and_an_empty_chart_says_so() -> None:
    svg = charts.bars("denials", [("<b>&policy", 2, "2 (50.0% of decisions)")], "Denials by policy")
    assert texts(svg, "label") == ["<b>&policy"]
    assert "&lt;b&gt;&amp;policy" in svg
    assert texts(charts.bars("denials", [], "Denials by policy"), "empty") == ["None in this window."]


def test_the_breaker_lamp_and_the_gauge_say_their_state() -> None:
    assert texts(charts.breaker("open"), "value") == ["OPA circuit breaker: open"]
    assert 'fill="#c0392b"' in charts.breaker("open")
    gauge = charts.gauge("escalation", 0.25, "25.0% escalated (1 of 4 decisions)", "Escalation rate")
    assert texts(gauge, "value") == ["25.0% escalated (1 of 4 decisions)"]
    assert 'width="238.0"' in gauge  # a quarter of the 952 pixels of the bar


def busy_hour(per_status: int) -> list[dict[str, object]]:
    """61 minutes of a busy service: every status ``per_status`` times a minute."""
    return [
        {"start": f"2026-11-21T09:{m % 60:02d}", "total": per_status * len(STATUSES),
         "by_status": dict.fromkeys(STATUSES, per_status)}
        for m in range(61)
    ]  # fmt: skip


def test_totals_too_wide_for_their_bars_run_up_the_bars_instead_of_over_each_other() -> None:
    svg = charts.timeline(busy_hour(137), "minute", list(STATUSES))  # 1233 a minute: 4 digits on 14 px bars
    totals = [t for t in ET.fromstring(svg).iter(f"{SVG}text") if t.get("class") == "total"]
    assert len(totals) == 61 and {t.text for t in totals} == {"1233"}
    assert all(t.get("transform") == f"rotate(-90 {t.get('x')} {t.get('y')})" for t in totals)
    # room is made above the tallest bar for its turned total: its top is below the total's length
    tallest = min(float(r.get("y") or 0) for r in ET.fromstring(svg).iter(f"{SVG}rect") if r.get("width") != "10")
    assert tallest >= 8 + 4 * 7.6

    few = charts.timeline(busy_hour(1), "minute", list(STATUSES))  # 9 a minute: upright, as before
    assert all(t.get("transform") is None for t in ET.fromstring(few).iter(f"{SVG}text") if t.get("class") == "total")


def test_a_legend_of_every_status_wraps_onto_a_second_row_within_the_chart() -> None:
    svg = charts.timeline(busy_hour(137), "minute", list(STATUSES))
    root = ET.fromstring(svg)
    legend = [t for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
    assert [t.text for t in legend] == [f"{status} 8357" for status in STATUSES]
    rows = sorted({float(t.get("y") or 0) for t in legend})
    assert rows == [232.0, 250.0] and root.get("height") == "258"
    for text in legend:  # each entry ends inside the chart, at about 8.2 px a capital and 7.6 a digit
        capitals = sum(c.isupper() for c in text.text or "")
        assert float(text.get("x") or 0) + 8.2 * capitals + 7.6 * 4 + 6 * 2 <= charts.WIDTH, text.text


def test_a_long_policy_name_gets_the_room_it_needs_left_of_its_bar_and_a_longer_one_is_cut() -> None:
    rows = [("shadow_review.promotion_samples", 3, "3"), ("ops.min_confidence", 1, "1")]
    root = ET.fromstring(charts.bars("denials", rows, "Denials by policy"))
    labels = [t for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    assert [t.text for t in labels] == ["shadow_review.promotion_samples", "ops.min_confidence"]
    # 31 characters at about 7 px: the bars start right of 217 px instead of 200, so the name starts inside
    assert {r.get("x") for r in root.iter(f"{SVG}rect")} == {"233.0"} and labels[0].get("x") == "225.0"

    endless = "guardrails_of_a_very_long_name." * 3
    root = ET.fromstring(charts.bars("denials", [(endless, 1, "1")], "Denials by policy"))
    [label] = [t for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    assert label.text is not None and label.text.endswith("…") and endless.startswith(label.text[:-1])
    assert len(label.text) == 49  # 48 characters and the ellipsis, 7 px each, within 360 - 16 px
    assert [t.text for t in root.iter(f"{SVG}title")] == ["Denials by policy", endless]
