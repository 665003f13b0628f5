"""The customers at risk and the themes of complaints in the admin: on the dashboard, on their
own page, as CSV, and a case for a person in one click. The data set is `tests/risk_data.py`,
seen at noon the day after its period (the clock is fixed before logging in)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

import web.home
from scheduler.lifecycle import CaseStatus, FollowUpStatus
from scheduler.models import Case, CaseNote, FollowUp, User
from tests.browsing import log_in, submit
from tests.conftest import OWNER, STAFF
from tests.figures_data import NOW
from tests.risk_data import Built, build_risks

PERIOD = "from=2026-11-02&to=2026-11-15"


@pytest.fixture
def built(session: Session) -> Built:
    return build_risks(session)


@pytest.fixture
def browsers(app: Flask, owner: User, staff: User) -> Iterator[tuple[FlaskClient, FlaskClient]]:
    """The owner's browser and a staff member's, logged in with the clock at NOW."""
    with freeze_time(NOW):
        pair = app.test_client(), app.test_client()
        assert log_in(pair[0], *OWNER).status_code == 302
        assert log_in(pair[1], *STAFF).status_code == 302
        yield pair


def test_the_dashboard_shows_what_customers_complain_about_and_leads_to_those_at_risk(
    browsers: tuple[FlaskClient, FlaskClient], built: Built
) -> None:
    owner, _staff = browsers
    page = owner.get(f"/?{PERIOD}").get_data(as_text=True)
    assert (
        '<a href="/at-risk?from=2026-11-02&amp;to=2026-11-15"><strong>Customers at risk</strong>'
    ) in page
    assert "<td>Cocina</td><td>breakage</td><td>2</td>" in page
    assert "“la puerta vino chancada”" in page
    assert "<td>no product known</td><td>staff</td><td>1</td>" in page
    assert "<td>Lavadora</td><td>staff</td><td>2 (1 customer)</td>" in page
    assert "“Did we solve it?”, asked 3 times: 1 solved, 1 not solved, 1 no answer." in page
    assert "<th>3 to 7 days</th>" in page


def test_the_dashboard_shows_the_most_complained_of_and_leaves_the_rest_to_the_download(
    browsers: tuple[FlaskClient, FlaskClient], built: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, _staff = browsers

    def complaint_rows() -> tuple[list[str], str]:
        page = owner.get(f"/?{PERIOD}").get_data(as_text=True)
        table = page.split('<table class="complaints">')[1].split("</table>")[0]
        return re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.DOTALL), page

    every, page = complaint_rows()
    assert len(every) == 7 and "in the download" not in page
    monkeypatch.setattr(web.home, "THEME_ROWS", 1)
    shown, page = complaint_rows()
    assert shown == every[:1]
    assert "<p>6 more products and themes in the download.</p>" in page


def test_one_product_narrows_the_dashboard(
    browsers: tuple[FlaskClient, FlaskClient], built: Built
) -> None:
    owner, _staff = browsers
    page = owner.get(f"/?{PERIOD}&product={built.kitchen}").get_data(as_text=True)
    assert '<option value="COC-1" selected>Cocina (COC-1)</option>' in page
    assert "<strong>3</strong><span>delivered</span>" in page
    assert "<td>Cocina</td><td>breakage</td><td>2</td>" in page
    assert "<td>Lavadora</td><td>staff</td>" not in page
    answer = owner.get(f"/?{PERIOD}&product=NOPE")
    assert answer.status_code == 400
    assert "Product: no product has the SKU &#39;NOPE&#39;" in answer.get_data(as_text=True)


def test_staff_see_the_list_and_download_it(
    browsers: tuple[FlaskClient, FlaskClient], built: Built
) -> None:
    _owner, staff = browsers
    page = staff.get(f"/at-risk?{PERIOD}").get_data(as_text=True)
    assert "5 customers, Nov 2, 2026 to Nov 15, 2026." in page
    assert page.index("Gone Quiet") < page.index("Reopened") < page.index("Undelivered")
    assert "1 follow-up did not arrive (Nov 5, 2026), and none has since" in page
    assert (
        "bought again, but answered none of their last 3 follow-ups (the last Nov 11, 2026)" in page
    )
    assert "scored us 3 out of 10, without a word (Nov 8, 2026)" in page
    assert f'href="/cases/{built.open_case}">Case {built.open_case} is open</a>' in page
    answer = staff.get(f"/at-risk.csv?{PERIOD}")
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="postventa-at-risk-2026-11-02-2026-11-15.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [(row["name"], row["sign"], row["at"], row["count"]) for row in rows] == [
        ("Gone Quiet", "gone_quiet", "2026-11-11T10:00-05:00", "3"),
        ("Reopened", "reopened", "2026-11-10T10:00-05:00", "1"),
        ("Silent Score", "silent_score", "2026-11-08T10:00-05:00", "3"),
        ("Bounced", "bounced", "2026-11-07T09:00-05:00", "1"),
        ("Undelivered", "undelivered", "2026-11-05T10:00-05:00", "1"),
    ]
    assert rows[2]["open_case_id"] == str(built.open_case) and rows[0]["open_case_id"] == ""
    assert staff.get("/at-risk?days=12").status_code == 400
    assert staff.get("/admin/complaints.csv").status_code == 403


def test_the_complaints_download_with_every_example(
    browsers: tuple[FlaskClient, FlaskClient], built: Built
) -> None:
    owner, _staff = browsers
    text = owner.get(f"/admin/complaints.csv?{PERIOD}").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [
        (row["product"], row["theme"], row["complaints"], row["example"]) for row in rows[:3]
    ] == [
        ("Cocina", "breakage", "2", "la puerta vino chancada"),
        ("Cocina", "breakage", "2", "2, el repartidor tiró la caja y llegó rota"),
        ("Cocina", "delivery", "1", "2, el repartidor tiró la caja y llegó rota"),
    ]
    assert (rows[-1]["product"], rows[-1]["theme_name"], rows[-1]["example"]) == (
        "",
        "staff",
        "la cajera fue grosera",
    )
    staff = [row for row in rows if (row["product"], row["theme"]) == ("Lavadora", "staff")]
    assert [(row["complaints"], row["customers"]) for row in staff] == [("2", "1"), ("2", "1")]


def test_a_case_for_a_customer_at_risk_in_one_click(
    browsers: tuple[FlaskClient, FlaskClient], built: Built, session: Session
) -> None:
    _owner, staff = browsers
    quiet = built.customers["gone quiet"]
    why = "bought again, but answered none of their last 3 follow-ups"
    answer = submit(staff, f"/customers/{quiet}/case", {"why": why}, page=f"/at-risk?{PERIOD}")
    assert answer.status_code == 302
    case = session.scalars(select(Case).where(Case.customer_id == quiet)).one()
    assert answer.headers["Location"] == f"/cases/{case.id}"
    assert (case.status, case.reason, case.opened_at) == (CaseStatus.OPEN, "at_risk", NOW)
    assert session.scalars(select(CaseNote.body).where(CaseNote.case_id == case.id)).all() == [why]
    held = session.scalars(select(FollowUp.status).where(FollowUp.customer_id == quiet)).all()
    assert set(held) == {FollowUpStatus.DELIVERED}  # nothing pending to hold: all went out
    page = staff.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "at risk (opened by a person)" in page and why in page
    # A second click (or a colleague's) finds the case open: no second case.
    again = submit(staff, f"/customers/{quiet}/case", {"why": why}, page=f"/at-risk?{PERIOD}")
    assert again.headers["Location"] == f"/cases/{case.id}"
    assert len(session.scalars(select(Case).where(Case.customer_id == quiet)).all()) == 1
    listed = staff.get(f"/at-risk?{PERIOD}").get_data(as_text=True)
    assert f"Case {case.id} is open" in listed


@pytest.mark.parametrize(
    ("why", "message"), [("  ", "say why the case is opened"), ("x" * 2_001, "at most 2000")]
)
def test_a_case_needs_a_reason_of_reasonable_length(
    browsers: tuple[FlaskClient, FlaskClient],
    built: Built,
    session: Session,
    why: str,
    message: str,
) -> None:
    _owner, staff = browsers
    quiet = built.customers["gone quiet"]
    answer = submit(staff, f"/customers/{quiet}/case", {"why": why}, page=f"/at-risk?{PERIOD}")
    assert answer.status_code == 302 and answer.headers["Location"] == "/at-risk"
    assert message in staff.get("/at-risk").get_data(as_text=True)
    assert session.scalars(select(Case).where(Case.customer_id == quiet)).all() == []
    assert staff.post("/customers/999999/case", data={"why": "x"}).status_code in (400, 404)


def test_in_spanish_each_why_reads_as_spoken(
    browsers: tuple[FlaskClient, FlaskClient], built: Built, session: Session, owner: User
) -> None:
    owner_browser, _staff = browsers
    owner.locale = "es"
    session.commit()
    page = owner_browser.get(f"/at-risk?{PERIOD}").get_data(as_text=True)
    assert "nos puso 3 de 10, sin una palabra (8 nov 2026)" in page
    assert "volvió a comprar, pero no respondió ninguno de sus últimos 3 seguimientos" in page
    assert "1 seguimiento no llegó (5 nov 2026), y ninguno desde entonces" in page
    page = owner_browser.get(f"/?{PERIOD}").get_data(as_text=True)
    assert "<td>Cocina</td><td>roturas y fallas</td><td>2</td>" in page
    assert "«¿Lo resolvimos?», preguntado 3 veces" in page


def test_a_long_list_is_paged(
    browsers: tuple[FlaskClient, FlaskClient], built: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    _owner, staff = browsers
    monkeypatch.setattr("web.at_risk.PAGE", 2)
    first = staff.get(f"/at-risk?{PERIOD}").get_data(as_text=True)
    assert "Gone Quiet" in first and "Reopened" in first and "Silent Score" not in first
    assert "Page 1 of 3" in first and 'rel="next"' in first and 'rel="prev"' not in first
    last = staff.get(f"/at-risk?{PERIOD}&page=3").get_data(as_text=True)
    assert "Undelivered" in last and "Gone Quiet" not in last and 'rel="prev"' in last
    assert "5 customers" in last
    for wrong in ("0", "abc", "-1", "9" * 30):
        answer = staff.get(f"/at-risk?{PERIOD}&page={wrong}")
        assert answer.status_code == 400, wrong
        assert "Page: a whole number from 1" in answer.get_data(as_text=True)
    # The CSV holds them all, whatever a page shows.
    text = staff.get(f"/at-risk.csv?{PERIOD}").get_data(as_text=True)
    assert len(list(csv.DictReader(io.StringIO(text)))) == 5


@pytest.mark.parametrize("url", ["/at-risk.csv", "/admin/complaints.csv", "/admin/figures.csv"])
def test_a_refused_download_quotes_what_was_asked_as_plain_text(
    browsers: tuple[FlaskClient, FlaskClient], built: Built, url: str
) -> None:
    owner, _staff = browsers
    answer = owner.get(f"{url}?from=<svg/onload=alert(1)>")
    assert answer.status_code == 400 and answer.mimetype == "text/plain"
    assert "From: " in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("product=%00", "Product"),
        ("product=" + "x" * 300, "Product"),
        ("cadence=a%00b", "Cadence"),
        ("cadence=%E2%80%8F" + "y" * 250, "Cadence"),
    ],
)
def test_an_odd_product_or_cadence_is_a_400_that_names_it(
    browsers: tuple[FlaskClient, FlaskClient], built: Built, query: str, field: str
) -> None:
    owner, _staff = browsers
    for url in ("/", "/at-risk", "/admin/figures.csv", "/admin/complaints.csv"):
        answer = owner.get(f"{url}?{query}")
        assert answer.status_code == 400, url
        assert f"{field}: " in answer.get_data(as_text=True), url


def test_a_page_past_the_end_shows_the_last(
    browsers: tuple[FlaskClient, FlaskClient], built: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    _owner, staff = browsers
    monkeypatch.setattr("web.at_risk.PAGE", 2)
    last = staff.get(f"/at-risk?{PERIOD}&page=99").get_data(as_text=True)
    assert "Page 3 of 3" in last and "Undelivered" in last
    assert staff.get(f"/at-risk?{PERIOD}&page=%C2%B2").status_code == 400  # a "²"
