"""The dashboard page's charts as inline SVG, drawn here in Python: the page loads no script and no
outside asset, so it renders the same offline, in a locked-down browser and in print."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH = 960
COLORS = {
    "APPROVED": "#2e8540", "EXECUTED": "#1b7a8c", "SUCCEEDED": "#136c2e", "PENDING_APPROVAL": "#d9a400",
    "ESCALATED": "#c0392b", "EXPIRED": "#8e44ad", "REJECTED": "#7f1d1d", "FAILED": "#e67e22",
    "CANCELLED": "#7f8c8d",
}  # fmt: skip
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def color(status: str) -> str:
    return COLORS.get(status, "#999999")


def duration(seconds: float | None) -> str:
    """A duration as a person reads it: 42 s, 3 min 12 s, 2 h 5 min, 3 d 4 h."""
    if seconds is None:
        return "-"
    whole, sign = int(abs(seconds)), "-" if seconds < 0 else ""
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if whole >= size:
            return f"{sign}{whole // size} {unit} {whole % size // sub_size} {sub}"
    return f"{sign}{whole} s"


def _svg(chart: str, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-{chart}" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" {_FONT}>'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", css: str = "", fill: str = "#1b1b1b") -> str:
    extra = f' class="{css}"' if css else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>{escape(text)}</text>'


def _label(start: str, bucket: str) -> str:
    """A bucket's start as its axis label: 20:41 for a minute, 20:00 for an hour, 12-04 for a day."""
    if bucket == "day":
        return start[5:10]
    return start[11:16] if bucket == "minute" else start[11:13] + ":00"


_DIGIT_W = 7.6  # a digit's width at font-size 12 in DejaVu Sans, the widest of the usual sans-serif fonts


def _text_width(text: str) -> float:
    """About how wide ``text`` is drawn at font-size 12: enough to lay labels out without measuring them."""
    return sum(8.2 if c.isupper() else _DIGIT_W if c.isdigit() else 7.0 for c in text)


def _fit(text: str, room: float) -> str:
    """``text``, cut short with an ellipsis where it is wider than ``room``."""
    if _text_width(text) <= room:
        return text
    while text and _text_width(text + "…") > room:
        text = text[:-1]
    return text + "…"


def timeline(series: list[dict[str, Any]], bucket: str, statuses: list[str]) -> str:
    """Decisions over time: one bar per bucket, stacked by current status, its total above it (upright
    where it fits the bar's width, else turned to run up the bar, with room made for it at the top)."""
    peak = max([item["total"] for item in series] + [1])
    widest = _text_width(str(peak))
    left = max(36.0, widest + 12)  # room for the axis's peak label
    slot = (WIDTH - left - 24) / max(len(series), 1)  # room on the right for the last tick's label
    upright = widest <= slot - 2
    top, bottom, every = (16 if upright else 8 + widest), 196, max(1, len(series) // 12)
    body = [f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - 8}" y2="{bottom}" stroke="#888"/>',
            _text(left - 6, top + 4, str(peak), "end"), _text(left - 6, bottom, "0", "end")]  # fmt: skip
    for index, item in enumerate(series):
        x, y = left + index * slot, float(bottom)
        body.append(f'<g class="bar" data-start="{escape(item["start"])}" data-total="{item["total"]}">')
        for status in statuses:
            n = item["by_status"].get(status, 0)
            if n:
                h = n / peak * (bottom - top)
                y -= h
                tip = f"{item['start']} {status}: {n}"
                body.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" height="{h:.1f}" '
                            f'fill="{color(status)}"><title>{escape(tip)}</title></rect>')  # fmt: skip
        if item["total"]:
            body.append(_total(x + slot / 2, y, str(item["total"]), upright))
        body.append("</g>")
        if index % every == 0:
            body.append(_text(x + slot / 2, bottom + 14, _label(item["start"], bucket), "middle", "tick"))
    legend, height = _legend(statuses, series, bottom + 36)
    return _svg("timeline", height, body + legend, "Decisions over time by current status")


def _total(middle: float, bar_top: float, text: str, upright: bool) -> str:
    if upright:
        return _text(middle, bar_top - 3, text, "middle", "total")
    x, y = middle + 4, bar_top - 3  # turned a quarter left about its start, it runs up from the bar
    return (f'<text x="{x:.1f}" y="{y:.1f}" transform="rotate(-90 {x:.1f} {y:.1f})" fill="#1b1b1b" '
            f'class="total">{escape(text)}</text>')  # fmt: skip


def _legend(statuses: list[str], series: list[dict[str, Any]], y: float) -> tuple[list[str], int]:
    """The legend, wrapped onto another row where the next entry would pass the chart's right edge,
    and the chart's height below it."""
    out, x = [], 36.0
    for status in statuses:
        n = sum(item["by_status"].get(status, 0) for item in series)
        text = f"{status} {n}"
        width = 30 + _text_width(text)
        if x > 36 and x + width - 16 > WIDTH:
            x, y = 36.0, y + 18
        out.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="10" height="10" fill="{color(status)}"/>')
        out.append(_text(x + 14, y, text, css="legend"))
        x += width
    return out, int(y + 8)


def bars(chart: str, rows: list[tuple[str, float, str]], title: str, fill: str = "#0b4f9c") -> str:
    """Horizontal bars, one per (label, value, text shown after the bar), scaled to the largest value; the
    labels get the room they need on the left, up to 360 pixels (a longer one is cut, whole in its tooltip)."""
    if not rows:
        return _svg(chart, 28, [_text(0, 18, "None in this window.", css="empty")], title)
    widest = max(_text_width(label) for label, _, _ in rows)
    left, row_h, peak = min(max(200.0, widest + 16), 360.0), 24, max([value for _, value, _ in rows] + [1e-9])
    body = []
    for index, (label, value, text) in enumerate(rows):
        y = 4 + index * row_h
        w = max(value / peak * (WIDTH - left - 280), 1)  # room after the longest bar for its text
        body.append(f'<g class="row" data-label="{escape(label)}"><title>{escape(label)}</title>')
        body.append(_text(left - 8, y + 15, _fit(label, left - 16), "end", "label"))
        body.append(f'<rect x="{left:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{fill}"/>')
        body.append(_text(left + w + 6, y + 15, text, css="value"))
        body.append("</g>")
    return _svg(chart, 8 + len(rows) * row_h, body, title)


def gauge(chart: str, share: float, text: str, title: str) -> str:
    """A share from 0 to 1 as a filled bar with its text."""
    filled = max(min(share, 1.0), 0.0) * (WIDTH - 8)
    body = [f'<rect x="4" y="6" width="{WIDTH - 8}" height="22" fill="#eeeeee" stroke="#888"/>',
            f'<rect x="4" y="6" width="{filled:.1f}" height="22" fill="{color("ESCALATED")}"/>',
            _text(10, 46, text, css="value")]  # fmt: skip
    return _svg(chart, 54, body, title)


def breaker(state: str) -> str:
    """The OPA circuit breaker's state as a lamp: green closed, red open, amber half open."""
    fill = {"closed": "#2e8540", "open": "#c0392b"}.get(state, "#d9a400")
    body = [f'<circle cx="18" cy="18" r="12" fill="{fill}" stroke="#555"/>',
            _text(40, 23, f"OPA circuit breaker: {state}", css="value")]  # fmt: skip
    return _svg("breaker", 36, body, f"OPA circuit breaker {state}")
