"""The owner's dashboard on the front page: the figures of a period, a chart a phone can read,
the same figures as CSV; staff land on the inbox. The figures are those of
`tests/figures_data.py`; only those that do not depend on today's date are asserted here (the
others are, with the clock fixed, in tests/test_stats.py)."""

from __future__ import annotations

import csv
import io

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.figures_data import build

PERIOD = "from=2026-11-02&to=2026-11-15"


def test_the_owner_sees_the_figures_of_the_period(
    owner_client: FlaskClient, session: Session
) -> None:
    build(session)
    answer = owner_client.get(f"/?{PERIOD}")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "<strong>4</strong><span>follow-ups sent</span>" in page
    assert "<strong>75 %</strong><span>answered within 7 days (3 of 4)</span>" in page
    assert "<strong>-25</strong><span>NPS, from 4 ratings</span>" in page
    assert "<strong>5</strong><span>cases opened</span>" in page
    assert "<strong>2</strong><span>opted out, of 3 customers messaged</span>" in page
    assert '<svg class="chart"' in page and 'aria-label="NPS by week"' in page
    assert ">0</text>" in page and ">-50</text>" in page and ">2 ratings</text>" in page
    assert "<li>opted out: 1</li>" in page and "no phone or email: 1" in page
    assert "<td>Premium</td><td><code>p1</code></td><td>1</td>" in page
    assert (
        'aria-label="Premium · p1: sent 1, delivered 1, replied 1, objections 0, resolved 0"'
        in page
    )
    assert "<td>200.00</td><td>2</td>" in page  # discounts given, and asked of the owner
    assert 'value="2026-11-02"' in page and 'value="2026-11-15"' in page


def test_one_cadence_narrows_the_figures(owner_client: FlaskClient, session: Session) -> None:
    build(session)
    page = owner_client.get(f"/?{PERIOD}&cadence=Premium").get_data(as_text=True)
    assert "<strong>1</strong><span>follow-ups sent</span>" in page
    assert '<option value="Premium" selected>' in page


def test_a_period_of_days_is_one_click_away(owner_client: FlaskClient) -> None:
    page = owner_client.get("/?days=7").get_data(as_text=True)
    assert 'href="/?days=7" aria-current="page"' in page
    assert "No follow-up was sent in these days." in page


def test_a_wrong_period_is_a_400_that_says_which_field(owner_client: FlaskClient) -> None:
    for query, message in [
        ("from=2026-13-01", "From: &#39;2026-13-01&#39; is not a date (YYYY-MM-DD)"),
        ("from=2026-11-20&to=2026-11-10", "From: 2026-11-20 is after the last day (2026-11-10)"),
        ("days=12", "Days: choose 7, 30 or 90."),
        ("cadence=Nope", "Cadence: no cadence is called &#39;Nope&#39;"),
    ]:
        answer = owner_client.get(f"/?{query}")
        assert answer.status_code == 400, query
        assert message in answer.get_data(as_text=True), query


def test_the_figures_download_as_csv(owner_client: FlaskClient, session: Session) -> None:
    build(session)
    answer = owner_client.get(f"/admin/figures.csv?{PERIOD}")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "postventa-figures-2026-11-02-2026-11-15.csv" in answer.headers["Content-Disposition"]
    rows = dict(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows["nps.score"] == "-25" and rows["steps.Premium.p1.sent"] == "1"
    assert owner_client.get("/admin/figures.csv?from=nope").status_code == 400


def test_staff_land_on_the_inbox(staff_client: FlaskClient) -> None:
    answer = staff_client.get("/")
    assert answer.status_code == 302 and answer.headers["Location"] == "/inbox"
    assert staff_client.get("/admin/figures.csv").status_code == 403
