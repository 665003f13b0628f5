"""The server's charts: inline SVG whose numbers are text, read by a screen reader and
drawn to scale."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from web.charts import FUNNEL_LABEL, funnel_bars, score_bars

SVG = "{http://www.w3.org/2000/svg}"


def _parsed(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(str(markup))


def test_a_funnel_draws_each_stage_as_its_share_of_the_first() -> None:
    chart = _parsed(
        funnel_bars("d1: sent 4, replied 2", [("sent", 4), ("replied", 2), ("lost", 0)])
    )
    assert chart.get("role") == "img" and chart.get("aria-label") == "d1: sent 4, replied 2"
    widths = [int(rect.get("width", "")) for rect in chart.iter(f"{SVG}rect")]
    assert widths == [100, 50, 0]
    assert all(rect.get("x") == str(FUNNEL_LABEL) for rect in chart.iter(f"{SVG}rect"))
    texts = [text.text for text in chart.iter(f"{SVG}text")]
    assert texts == ["sent", "4", "replied", "2", "lost", "0"]


def test_a_funnel_with_nothing_sent_draws_no_bar_and_escapes_its_words() -> None:
    chart = funnel_bars("<b>", [("<i>sent</i>", 0)])
    assert "<b>" not in chart and "<i>" not in chart and "&lt;i&gt;sent" in chart
    assert re.findall(r'width="(\d+)"', chart) == ["0"]
    assert funnel_bars("empty", []) == ""


def test_scores_go_up_from_the_middle_line_or_down() -> None:
    chart = _parsed(score_bars("NPS", [("02/11", 100, "2 ratings"), ("09/11", -50, "4 ratings")]))
    up, down = chart.iter(f"{SVG}rect")
    assert up.get("class") == "bar up" and down.get("class") == "bar down"
    assert int(up.get("height", "")) == 2 * int(down.get("height", ""))
