"""Hostile input never answers 500: control characters, absurd numbers and dates, deep JSON and
ids beyond what the database holds are refused with the field (and the CSV row) named."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from scheduler.accounts import create_api_token
from scheduler.config import defaults
from scheduler.db import MAX_ID
from scheduler.defaults import install_defaults
from scheduler.models import Sale
from scheduler.sending.csv_import import NOT_TEXT, UnusableFile, check_sales_csv, decode
from scheduler.sending.intake import validate_sale
from tests.browsing import check_upload, csrf_token, use_config
from tests.conftest import Cli
from tests.factories import NOW, raw
from web.api import timestamp

CONFIG = defaults()
HUGE = str(2**64)  # beyond any integer column of PostgreSQL and SQLite
BEYOND = str(MAX_ID + 1)  # beyond PostgreSQL's integer, the ids' type
HEADER = "external_id,sold_at,customer_name,phone,notes\n"
NUL_ROW = (
    HEADER
    + "N-1,2026-11-20T10:00,Rosa Quispe,987654321,ok\n"
    + "N-2,2026-11-20T10:00,Juan\x00Perez,987000111,ok\n"
    + "N-3,2026-11-20T10:00,Ana Diaz,987000222,nota\x00rota\n"
    + "N-4,2026-11-20T10:00,Luis Soto,987000333,ok\n"
)


@pytest.fixture
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def problems(**changes: Any) -> list[tuple[str, str]]:
    result = validate_sale(raw(**changes), CONFIG, now=NOW)
    assert isinstance(result, list), result
    return result


def count_sales(session: Session) -> int:
    session.rollback()  # a fresh look at what the app committed
    return session.scalar(select(func.count()).select_from(Sale)) or 0


# --- item 5: control characters ------------------------------------------------------------------


@pytest.mark.parametrize("field", ["external_id", "customer_name", "product_sku", "currency"])
@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\n", "\ud800"])
def test_a_control_character_is_refused_in_its_field(field: str, char: str) -> None:
    [(named, message)] = problems(**{field: f"AB{char}C"})
    assert named == field
    assert message.startswith("contains the ") and f"U+{ord(char):04X}" in message


def test_attributes_with_nul_nan_or_deep_nesting_are_named() -> None:
    deep: Any = "fondo"
    for _ in range(20):
        deep = [deep]
    found = problems(
        attributes={"note": "a\x00b", "score": float("nan"), "deep": deep, "ok": "line\nbreak"}
    )
    assert dict(found) == {
        "attributes.note": "contains the control character U+0000",
        "attributes.score": "nan is not a number",
        "attributes.deep": "is nested more than 10 levels deep",
    }
    [(field, message)] = problems(attributes={"bad\x00name": "x"})
    assert field == "attributes" and "U+0000" in message


def test_the_dry_run_and_the_import_refuse_the_same_rows(
    postventa: Cli, tmp_path: Path, session: Session, frozen: None
) -> None:
    install_defaults(session, NOW)
    session.commit()
    path = tmp_path / "ventas.csv"
    path.write_bytes(NUL_ROW.encode())
    dry = postventa("import-sales", str(path), "--dry-run", "--json")
    report = json.loads(dry.stdout)
    assert dry.exit_code == 1 and (report["valid"], report["rejected"]) == (2, 2)
    assert report["problems"] == [
        {"line": 3, "field": "customer_name", "message": "contains the control character U+0000"},
        {"line": 4, "field": "notes", "message": "contains the control character U+0000"},
    ]
    done = postventa("import-sales", str(path), "--json")
    assert done.exit_code == 1 and json.loads(done.stdout)["problems"] == report["problems"]
    assert json.loads(done.stdout)["created"] == 2 and count_sales(session) == 2


def test_the_import_page_names_the_nul_rows_and_imports_the_rest(
    frozen: None, staff_client: FlaskClient, session: Session
) -> None:
    install_defaults(session, NOW)
    session.commit()
    token = csrf_token(staff_client, "/sales/import")
    checked = check_upload(staff_client, NUL_ROW.encode())
    page = checked.get_data(as_text=True)
    assert checked.status_code == 200 and "4 rows: 2 good, 2 rejected." in page
    assert "contains the control character U+0000" in page
    imported = staff_client.post(
        "/sales/import", data={"csrf_token": token, "action": "import", "content": NUL_ROW}
    )
    assert imported.status_code == 302 and count_sales(session) == 2


def test_an_external_id_with_nul_is_a_422_in_the_api(
    client: FlaskClient, api_token: str, session: Session
) -> None:
    answer = post_sale(client, api_token, external_id="S-\u0000-1")
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == [
        {"field": "external_id", "message": "contains the control character U+0000"}
    ]
    nested = post_sale(client, api_token, attributes={"store": "Mira\u0000flores"})
    assert nested.status_code == 422
    assert nested.get_json()["errors"][0]["field"] == "attributes.store"
    assert count_sales(session) == 0


# --- item 10: a binary file ----------------------------------------------------------------------


def _xlsx() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>" * 50)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        _xlsx(),
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8,
        bytes(range(256)) * 16,
    ],
    ids=["xlsx", "png", "bytes"],
)
def test_a_binary_file_is_refused_without_echoing_its_bytes(data: bytes) -> None:
    text, _encoding = decode(data)
    with pytest.raises(UnusableFile) as refused:
        check_sales_csv(text, CONFIG, now=NOW)
    assert str(refused.value) == NOT_TEXT


def test_the_command_line_and_the_page_refuse_a_binary_file_in_words(
    postventa: Cli, tmp_path: Path, staff_client: FlaskClient
) -> None:
    path = tmp_path / "ventas.xlsx"
    path.write_bytes(_xlsx())
    refused = postventa("import-sales", str(path))
    assert refused.exit_code == 2
    assert refused.stderr == f"Error: {path}: {NOT_TEXT}\n"
    answer = check_upload(staff_client, _xlsx(), "ventas.xlsx")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "not a CSV file but a spreadsheet" in page
    assert "xl/workbook" not in page and "\x03" not in page and "\ufffd" not in page


# --- item 7: absurd numbers and dates ------------------------------------------------------------


@pytest.mark.parametrize("amount", ["1e300", 1e300, "1E+999999", 10**30])
def test_an_astronomical_amount_is_refused(amount: object) -> None:
    assert problems(amount=amount) == [("amount", "must be at most 9999999999.99")]


@pytest.mark.parametrize(
    ("sold_at", "message"),
    [
        ("9999-12-31T23:59:59", "is more than 24 hours in the future"),
        ("9999-12-31T23:59:59-12:00", "is more than 24 hours in the future"),
        ("0001-01-01T00:00:00+14:00", "is more than 3650 days in the past"),
        ("0001-01-01T00:00:00", "is more than 3650 days in the past"),
        ("2016-11-20T10:00:00", "is more than 3650 days in the past"),
        ("2026-11-24T10:01:00", "is more than 24 hours in the future"),
    ],
)
def test_a_sale_dated_out_of_the_span_is_refused(sold_at: str, message: str) -> None:
    assert problems(sold_at=sold_at) == [("sold_at", f"{sold_at!r} {message}")]


def test_the_span_is_configurable() -> None:
    narrow = CONFIG.replace(sales={"max_age_days": 30, "max_future_hours": 0})
    assert CONFIG.sales.max_age_days == 3650 and CONFIG.sales.max_future_hours == 24
    assert isinstance(validate_sale(raw(sold_at="2026-10-20T10:00"), narrow, now=NOW), list)
    assert not isinstance(validate_sale(raw(sold_at="2026-10-20T10:00"), CONFIG, now=NOW), list)
    assert isinstance(validate_sale(raw(sold_at="2026-11-23T10:30"), narrow, now=NOW), list)
    assert not isinstance(validate_sale(raw(sold_at="2026-11-23T09:30"), narrow, now=NOW), list)


def test_due_at_is_iso_8601_even_before_the_year_1000() -> None:
    assert timestamp(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    assert timestamp(datetime(2026, 11, 23, 15, 0, 7, 999, tzinfo=UTC)) == "2026-11-23T15:00:07Z"


# --- item 7 in the API and the web -------------------------------------------------------------


@pytest.fixture
def api_token(session: Session, frozen: None) -> str:
    install_defaults(session, NOW)
    secret = create_api_token(session, name="tienda", now=NOW, actor="test")
    session.commit()
    return secret


def post_sale(client: FlaskClient, token: str, **changes: Any) -> Any:
    sale: dict[str, Any] = {
        "external_id": "S-1",
        "sold_at": "2026-11-22T21:15:00-05:00",
        "customer": {"name": "Rosa Quispe", "phone": "987654321"},
        "amount": "1899.90",
    }
    sale.update(changes)
    return client.post("/api/sales", json=sale, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 1e300}, "amount"),
        ({"sold_at": "9999-12-31T23:59:59"}, "sold_at"),
        ({"sold_at": "0001-01-01T00:00:00+14:00"}, "sold_at"),
        ({"attributes": {"x": float("inf")}}, "attributes.x"),
    ],
)
def test_the_api_names_the_field_of_an_absurd_value(
    client: FlaskClient, api_token: str, changes: dict[str, Any], field: str
) -> None:
    answer = post_sale(client, api_token, **changes)
    assert answer.status_code == 422
    assert [error["field"] for error in answer.get_json()["errors"]] == [field]


def test_deeply_nested_json_is_a_400(client: FlaskClient, api_token: str) -> None:
    for body in ("[" * 100_000, '{"a":' * 100_000):
        answer = client.post(
            "/api/sales",
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {api_token}"},
        )
        assert answer.status_code == 400
        assert answer.get_json()["errors"][0]["message"] == (
            "the body is nested too deeply to be a sale"
        )


def test_huge_ids_in_api_paths_and_queries_are_4xx(client: FlaskClient, api_token: str) -> None:
    auth = {"Authorization": f"Bearer {api_token}"}
    assert client.post(f"/api/sales/{HUGE}/cancel", headers=auth).status_code == 404
    assert client.get(f"/api/customers/{HUGE}", headers=auth).status_code == 404
    for value in (HUGE, "9" * 5000):
        answer = client.get(f"/api/follow-ups?sale_id={value}", headers=auth)
        assert answer.status_code == 400
        assert [error["field"] for error in answer.get_json()["errors"]] == ["sale_id"]
    assert client.get(f"/api/follow-ups?limit={HUGE}", headers=auth).status_code == 400
    fits = client.get(f"/api/follow-ups?sale_id={MAX_ID}", headers=auth)
    assert fits.status_code == 200 and fits.get_json() == {"follow_ups": [], "next_cursor": None}
    beyond = client.get(f"/api/follow-ups?sale_id={MAX_ID + 1}", headers=auth)
    assert beyond.status_code == 400
    assert client.get(f"/api/customers/{MAX_ID + 1}", headers=auth).status_code == 404


def test_huge_ids_in_admin_paths_are_404(owner_client: FlaskClient) -> None:
    from web import create_app

    app = create_app(owner_client.application.extensions["postventa"].config)
    routes = [rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule]
    app.extensions["postventa"].engine.dispose()
    assert len(routes) >= 20
    for rule, value in ((rule, value) for rule in routes for value in (BEYOND, HUGE)):
        path = rule.rule.replace(f"<int:{next(iter(rule.arguments))}>", value)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            answer = owner_client.open(path, method=method)
            assert answer.status_code in (401, 404), (method, path, answer.status_code)


# --- the status callback ------------------------------------------------------------------------

TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://shop.example.pe"


@pytest.mark.parametrize("value", [BEYOND, HUGE, "9" * 5000, "١٢", "12abc"])
def test_a_status_callback_with_an_impossible_follow_up_id_is_a_400(
    client: FlaskClient, value: str
) -> None:
    use_config(client.application, business={"public_url": PUBLIC}, twilio={"auth_token": TOKEN})
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    path = f"/webhooks/twilio/status?follow_up={value}"
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    answer = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 400
    assert answer.get_data(as_text=True).startswith("follow_up must be a follow-up id")
