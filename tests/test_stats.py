"""The dashboard's figures (`scheduler.figures`, `GET /api/stats`), each one asserted on the
hand-built data set of `tests/figures_data.py`."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy.orm import Session

from scheduler.figures.period import Period, PeriodError, period_from
from scheduler.figures.scope import Scope
from scheduler.figures.summary import (
    CaseCounts,
    Checks,
    Nps,
    Remedies,
    StepFunnel,
    figures,
)
from tests.figures_data import LIMA, NOW, OPENING, PERIOD, build


def test_every_figure_of_the_period(session: Session) -> None:
    build(session)
    found = figures(session, PERIOD, now=NOW, opening=OPENING)
    assert found.follow_ups == {
        "delivered": {"sms": 2},
        "sent": {"email": 1, "sms": 1},
        "failed": {"sms": 1},
        "skipped": {"sms": 1, "email": 1},
    }
    assert found.skipped_because == {"no phone or email": 1, "opted out": 1}
    # Sent in the period: f1, f2, f6, f10; answered within 7 days: f1, f6, f10 (after the end).
    assert (found.sent, found.answered, found.reply_rate) == (4, 3, 0.75)
    assert found.replies == 5
    assert found.nps == Nps(promoters=1, passives=1, detractors=2)
    assert (found.nps.ratings, found.nps.score) == (4, -25)
    assert found.nps_by_week == [
        (date(2026, 11, 2), Nps(promoters=1, detractors=1)),
        (date(2026, 11, 9), Nps(passives=1, detractors=1)),
    ]
    assert [nps.score for _week, nps in found.nps_by_week] == [0, -50]
    assert found.cases == CaseCounts(
        opened=5,
        resolved=2,
        open_now=4,
        overdue_now=1,
        # At noon on the 16th: opened on the 12th at 10:00; the 13th, 14th and 15th.
        open_by_age={"under_1_day": 0, "1_to_3_days": 3, "3_to_7_days": 1, "over_7_days": 0},
    )
    assert found.checks == Checks(asked=0, solved=0, not_solved=0)
    assert found.opt_outs.customers == 2
    assert found.opt_outs.by_channel == {"sms": 1, "email": 1, "whatsapp": 1}
    assert (found.opt_outs.messaged, found.opt_outs.share) == (3, 2 / 3)
    # Opened in the period and decided: answered after 60, 60 and 330 opening minutes, and one
    # unanswered past its deadline; two of the four on time. The Sunday case is not due yet.
    assert found.first_answers.minutes == [60, 60, 330]
    assert (found.first_answers.percentile(0.5), found.first_answers.percentile(0.9)) == (60, 330)
    assert found.first_answers.on_time_share == 0.5
    assert found.remedies == {
        "discount": Remedies(given=2, value=Decimal("200.00"), needed_owner=2),
        "replacement": Remedies(given=0, value=Decimal("0.00"), needed_owner=1),
    }
    assert found.steps == [
        StepFunnel("Default", "d1", sent=2, delivered=1, replied=2, objections=2, resolved=1),
        StepFunnel("Default", "d2", sent=1, delivered=0, replied=1, objections=0, resolved=0),
        StepFunnel("Premium", "p1", sent=1, delivered=1, replied=1, objections=0, resolved=0),
    ]


def test_one_cadence_narrows_follow_ups_replies_and_ratings(session: Session) -> None:
    premium = build(session)
    found = figures(session, PERIOD, now=NOW, opening=OPENING, scope=Scope(cadence_id=premium))
    assert found.follow_ups == {"delivered": {"sms": 1}}
    assert (found.sent, found.answered, found.reply_rate, found.replies) == (1, 1, 1.0, 1)
    assert found.nps == Nps(passives=1) and found.nps.score == 0
    assert [nps.ratings for _week, nps in found.nps_by_week] == [0, 1]
    assert [step.step for step in found.steps] == ["p1"]


def test_an_empty_period_has_no_rate_and_no_score(session: Session) -> None:
    build(session)
    empty = figures(
        session, Period(date(2025, 1, 1), date(2025, 1, 31), LIMA), now=NOW, opening=OPENING
    )
    assert empty.follow_ups == {} and empty.reply_rate is None and empty.nps.score is None
    assert empty.opt_outs.share is None and len(empty.nps_by_week) == 5


def test_a_period_is_read_from_local_days() -> None:
    today = date(2026, 11, 28)
    assert period_from(None, None, tz=LIMA, today=today) == Period(date(2026, 10, 30), today, LIMA)
    period = period_from("2026-11-02", "2026-11-15", tz=LIMA, today=today)
    assert period.start == datetime(2026, 11, 2, 5, 0, tzinfo=ZoneInfo("UTC"))
    assert period.end == datetime(2026, 11, 16, 5, 0, tzinfo=ZoneInfo("UTC"))
    assert [week[0] for week in period.weeks()] == [date(2026, 11, 2), date(2026, 11, 9)]
    assert [
        w[0] for w in period_from("2026-11-04", "2026-11-10", tz=LIMA, today=today).weeks()
    ] == [
        date(2026, 11, 4),
        date(2026, 11, 9),
    ]


@pytest.mark.parametrize(
    ("first", "last", "field", "message"),
    [
        ("2026-11-31", None, "from", "'2026-11-31' is not a date (YYYY-MM-DD)"),
        ("20261101", None, "from", "'20261101' is not a date (YYYY-MM-DD)"),
        (None, "9999-12-31", "to", "9999-12-31 is not between 1970-01-01 and 2999-12-31"),
        ("2026-11-20", "2026-11-10", "from", "2026-11-20 is after the last day (2026-11-10)"),
        ("2024-01-01", "2026-01-01", "to", "at most 366 days from the first"),
    ],
)
def test_a_wrong_period_is_refused_naming_the_field(
    first: str | None, last: str | None, field: str, message: str
) -> None:
    with pytest.raises(PeriodError) as refused:
        period_from(first, last, tz=LIMA, today=date(2026, 11, 28))
    assert (refused.value.field, str(refused.value)) == (field, message)


def _api(client: FlaskClient, token: str, query: str) -> tuple[int, object, str]:
    answer = client.get(f"/api/stats?{query}", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, answer.get_json(silent=True), answer.get_data(as_text=True)


def test_the_api_gives_the_figures_as_json_and_csv(
    client: FlaskClient, token: str, session: Session
) -> None:
    build(session)
    with freeze_time(NOW):
        status, document, _text = _api(client, token, "from=2026-11-02&to=2026-11-15")
        assert status == 200 and isinstance(document, dict)
        assert document["time_zone"] == "America/Lima" and document["cadence"] is None
        assert document["follow_ups"]["delivered"] == 2 and document["follow_ups"]["held"] == 0
        assert document["follow_ups"]["by_channel"]["email"]["skipped"] == 1
        assert document["reply_rate"] == 0.75 and document["replies"] == 5
        assert document["nps"]["score"] == -25 and document["nps"]["ratings"] == 4
        assert [week["score"] for week in document["nps"]["by_week"]] == [0, -50]
        assert document["cases"] == {
            "opened": 5,
            "resolved": 2,
            "open_now": 4,
            "overdue_now": 1,
            "open_by_age": {"under_1_day": 0, "1_to_3_days": 3, "3_to_7_days": 1, "over_7_days": 0},
        }
        assert document["checks"] == {"asked": 0, "solved": 0, "not_solved": 0, "no_answer": 0}
        assert document["opt_outs"]["customers"] == 2 and document["opt_outs"]["messaged"] == 3
        assert document["first_response_business_minutes"] == {
            "p50": 60,
            "p90": 330,
            "answered": 3,
            "on_time_share": 0.5,
        }
        assert document["remedies"]["discount"] == {
            "given": 2,
            "value": "200.00",
            "needed_owner": 2,
        }
        assert document["steps"][-1] == {
            "cadence": "Premium",
            "step": "p1",
            "sent": 1,
            "delivered": 1,
            "replied": 1,
            "objections": 0,
            "resolved": 0,
        }
        status, premium, _text = _api(
            client, token, "from=2026-11-02&to=2026-11-15&cadence=Premium"
        )
        assert status == 200 and isinstance(premium, dict) and premium["replies"] == 1
        status, _none, text = _api(client, token, "from=2026-11-02&to=2026-11-15&format=csv")
    assert status == 200
    rows = dict(csv.reader(io.StringIO(text)))
    assert rows["nps.score"] == "-25" and rows["reply_rate"] == "0.75"
    assert rows["nps.by_week.2026-11-09.score"] == "-50"
    assert rows["follow_ups.skipped_because.opted out"] == "1"
    assert rows["cadence"] == ""
    assert rows["remedies.replacement.needed_owner"] == "1"
    assert rows["steps.Premium.p1.replied"] == "1"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("cadence=Nope", "cadence"),
        ("product=NOPE", "product"),
        ("product=%00", "product"),
        ("cadence=" + "z" * 201, "cadence"),
        ("format=xlsx", "format"),
    ],
)
def test_the_api_refuses_a_wrong_query_naming_the_field(
    client: FlaskClient, token: str, query: str, field: str
) -> None:
    status, document, _text = _api(client, token, query)
    assert status == 400 and isinstance(document, dict)
    assert [error["field"] for error in document["errors"]] == [field]


def test_the_figures_need_a_token(client: FlaskClient) -> None:
    assert client.get("/api/stats").status_code == 401
