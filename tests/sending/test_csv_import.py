"""Importing sales from CSV: every row checked first, bad rows named, good rows kept."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from scheduler.config import defaults
from scheduler.defaults import install_defaults
from scheduler.models import AuditEntry, CadenceStep, FollowUp, Product, Sale
from scheduler.sending.csv_import import RowProblem, UnusableFile, check_sales_csv, decode
from tests.browsing import check_upload, csrf_token
from tests.conftest import Cli
from tests.factories import NOW

GOOD_AND_BAD = (
    "external_id,sold_at,customer_name,phone,email,product_sku,product_name,amount,currency,store\n"
    "A-1,2026-11-20T10:00,Rosa Quispe,987654321,,LAV-9,Lavadora,1899.00,PEN,Miraflores\n"
    "A-2,ayer,Juan Perez,12,,,,mucho,PEN,Surco\n"
    "\n"
    "A-3,2026-11-21 11:30,Ana Diaz,,ana@example.pe,,,,,Surco\n"
    "A-1,2026-11-22T10:00,Rosa Otra,987000111,,,,,,\n"
)


@pytest.fixture
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def test_check_names_every_bad_row_and_keeps_the_good_ones(frozen: None) -> None:
    check = check_sales_csv(GOOD_AND_BAD, defaults(), now=NOW)
    assert check.rows == 4
    assert [(line, sale.external_id) for line, sale in check.sales] == [(2, "A-1"), (5, "A-3")]
    assert [(p.line, p.field) for p in check.problems] == [
        (3, "sold_at"),
        (3, "phone"),
        (3, "amount"),
        (6, "external_id"),
    ]
    assert check.problems[-1] == RowProblem(6, "external_id", "'A-1' is already on line 2")
    assert check.rejected_lines == [3, 6]
    first = check.sales[0][1]
    assert first.phone == "+51987654321" and first.attributes == {"store": "Miraflores"}


def test_semicolons_and_windows_1252_from_a_spanish_spreadsheet(frozen: None) -> None:
    data = "external_id;sold_at;customer_name;phone\nB-1;2026-11-20;Begoña Núñez;987654321\n"
    text, encoding = decode(data.encode("cp1252"))
    assert encoding == "windows-1252"
    check = check_sales_csv(text, defaults(), now=NOW)
    assert check.sales[0][1].customer_name == "Begoña Núñez" and not check.problems


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        (
            "tienda,notas\nMiraflores,regalo\n",
            "line 1: the header lacks external_id, sold_at, "
            "customer_name, phone or email (it has: tienda, notas)",
        ),
        (  # Spanish names are read: only what is really missing is named
            "nombre,telefono\nRosa,987654321\n",
            "line 1: the header lacks external_id, sold_at (it has: nombre, telefono)",
        ),
        ("external_id,sold_at,customer_name,phone\n", "the file has a header but no sales"),
        (
            "external_id,sold_at,customer_name,phone,phone\nA,2026-11-20,R,1,2\n",
            "line 1: the columns phone appear twice",
        ),
    ],
)
def test_an_unusable_file_is_refused_whole(text: str, message: str) -> None:
    with pytest.raises(UnusableFile) as refused:
        check_sales_csv(text, defaults(), now=NOW)
    assert str(refused.value) == message


def test_a_short_row_is_named(frozen: None) -> None:
    check = check_sales_csv(
        "external_id,sold_at,customer_name,phone\nA,2026-11-20\n", defaults(), now=NOW
    )
    assert check.problems == [RowProblem(2, "", "has 2 fields where the header has 4")]


def test_a_quoted_field_with_doubled_quotes_and_a_comma_is_one_field(frozen: None) -> None:
    # Found by tests/test_properties.py: csv.Sniffer took this good row for seven fields.
    text = (
        "external_id,sold_at,phone,email,store,customer_name\n"
        'A-0,2026-11-20T10:00,900000000,,,"Ana ""la, jefa"""\n'
    )
    check = check_sales_csv(text, defaults(), now=NOW)
    assert not check.problems
    assert [sale.customer_name for _line, sale in check.sales] == ['Ana "la, jefa"']


def test_a_short_row_does_not_hide_the_semicolons_of_the_header(frozen: None) -> None:
    # Found by tests/test_properties.py: csv.Sniffer chose "," and the file was refused whole,
    # "the header lacks external_id, ..." for a header that has them all.
    text = (
        "external_id;sold_at;customer_name;phone;email;store\n2026-11-20T10:00;Rosa;900000000;;\n"
    )
    check = check_sales_csv(text, defaults(), now=NOW)
    assert check.problems == [RowProblem(2, "", "has 5 fields where the header has 6")]


def test_spaces_after_the_delimiter_are_skipped_before_a_quoted_field(frozen: None) -> None:
    text = (
        'external_id, sold_at, customer_name, phone\nA-1, 2026-11-20, "Quispe, Rosa", 987654321\n'
    )
    check = check_sales_csv(text, defaults(), now=NOW)
    assert [sale.customer_name for _line, sale in check.sales] == ["Quispe, Rosa"]


def _count(session: Session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(Sale)) or 0


def test_command_line_import_exit_codes(
    postventa: Cli, tmp_path: Path, session: Session, frozen: None
) -> None:
    install_defaults(session, NOW)
    session.commit()
    path = tmp_path / "ventas.csv"
    path.write_text(GOOD_AND_BAD, encoding="utf-8")
    dry = postventa("import-sales", str(path), "--dry-run", "--json")
    assert dry.exit_code == 1 and _count(session) == 0
    report = json.loads(dry.stdout)
    assert (report["rows"], report["valid"], report["rejected"], report["dry_run"]) == (
        4,
        2,
        2,
        True,
    )
    assert report["problems"][0] == {
        "line": 3,
        "field": "sold_at",
        "message": report["problems"][0]["message"],
    }
    done = postventa("import-sales", str(path))
    assert done.exit_code == 1
    assert "line 3, phone:" in done.stderr
    assert "4 rows: 2 good, 2 rejected; imported 2 new, 0 known" in done.stdout
    assert _count(session) == 2
    assert session.scalar(select(func.count()).select_from(FollowUp))  # planned
    again = postventa("import-sales", str(path), "--json")
    assert json.loads(again.stdout)["existing"] == 2 and _count(session) == 2
    good = tmp_path / "good.csv"
    good.write_text("\n".join(GOOD_AND_BAD.splitlines()[:2]) + "\n", encoding="utf-8")
    assert postventa("import-sales", str(good)).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("nombre\nRosa\n", encoding="utf-8")
    unusable = postventa("import-sales", str(bad))
    assert unusable.exit_code == 2 and "the header lacks" in unusable.stderr


def test_import_page_checks_first_then_imports_the_good_rows(
    frozen: None, staff_client: FlaskClient, session: Session
) -> None:
    install_defaults(session, NOW)
    session.commit()
    token = csrf_token(staff_client, "/sales/import")
    checked = check_upload(staff_client, GOOD_AND_BAD.encode())
    page = checked.get_data(as_text=True)
    assert checked.status_code == 200 and "4 rows: 2 good, 2 rejected." in page
    assert "is already on line 2" in page and "Import the 2 good rows" in page
    assert _count(session) == 0  # a dry run
    imported = staff_client.post(
        "/sales/import", data={"csrf_token": token, "action": "import", "content": GOOD_AND_BAD}
    )
    assert imported.status_code == 302 and _count(session) == 2
    listing = staff_client.get("/customers").get_data(as_text=True)
    assert "2 sales imported, 0 were already known, 2 rows rejected." in listing


def test_import_page_refuses_an_unusable_file(
    frozen: None, staff_client: FlaskClient, session: Session
) -> None:
    answer = check_upload(staff_client, b"nombre\nRosa\n", "x.csv")
    assert answer.status_code == 422 and "the header lacks" in answer.get_data(as_text=True)


def test_a_file_of_several_megabytes_is_checked_and_imported(
    frozen: None, staff_client: FlaskClient, session: Session
) -> None:
    install_defaults(session, NOW)
    session.commit()
    header = "external_id,sold_at,customer_name,phone,notes\n"
    rows = "".join(
        f"M-{n},2026-11-20T10:00,Cliente {n},9{n:08d},{'x' * 600}\n" for n in range(3_000)
    )
    text = header + rows
    assert 1_500_000 < len(text) < 5 * 1024 * 1024
    token = csrf_token(staff_client, "/sales/import")
    body, length, boundary = stream_encode_multipart(
        {
            "csrf_token": token,
            "action": "check",
            "file": FileStorage(io.BytesIO(text.encode()), "big.csv"),
        },
        use_tempfile=False,  # the test client would spool it to a file it never closes
    )
    checked = staff_client.post(
        "/sales/import",
        input_stream=body,
        content_length=length,
        content_type=f'multipart/form-data; boundary="{boundary}"',
    )
    assert checked.status_code == 200
    assert "3000 rows: 3000 good, 0 rejected." in checked.get_data(as_text=True)
    imported = staff_client.post(
        "/sales/import", data={"csrf_token": token, "action": "import", "content": text}
    )
    assert imported.status_code == 302 and _count(session) == 3_000


def test_a_whatsapp_opt_in_column_is_read_as_a_yes_or_named(frozen: None) -> None:
    data = (
        "external_id,sold_at,customer_name,phone,whatsapp_opt_in\n"
        "W-1,2026-11-20,Rosa Quispe,987654321,sí\n"
        "W-2,2026-11-20,Juan Perez,987000111,\n"
        "W-3,2026-11-20,Ana Diaz,987000222,quizas\n"
    )
    check = check_sales_csv(data, defaults(), now=NOW)
    assert [(sale.external_id, sale.whatsapp_opt_in) for _line, sale in check.sales] == [
        ("W-1", True),
        ("W-2", False),
    ]
    assert [(p.line, p.field) for p in check.problems] == [(4, "whatsapp_opt_in")]
    assert "whatsapp_opt_in" not in check.sales[0][1].attributes  # a column of ours


PRODUCT_COLUMNS = (
    "external_id;sold_at;customer_name;phone;product_sku;category;renewal_days\n"
    "R-1;2026-11-20;Rosa;987654321;MANT-1Y;Servicios;365\n"
    "R-2;2026-11-20;Juan;987654322;MANT-1Y;;365\n"  # blank: not given, no conflict
    "R-3;2026-11-20;Ana;987654323;MANT-1Y;Servicio;30\n"  # says otherwise: refused
    "R-4;2026-11-20;Luis;987654324;LAV-9;;365 días\n"
    "R-5;2026-11-20;Eva;987654325;;Servicios;-1\n"
)


def test_category_and_renewal_columns_are_checked_and_one_product_has_one_value(
    frozen: None,
) -> None:
    check = check_sales_csv(PRODUCT_COLUMNS, defaults(), now=NOW)
    assert [line for line, _sale in check.sales] == [2, 3]
    assert check.problems == [
        RowProblem(4, "category", "differs from line 2, which gives the product 'Servicios'"),
        RowProblem(4, "renewal_days", "differs from line 2, which gives the product 365"),
        RowProblem(5, "renewal_days", "must be a whole number of days, such as 365"),
        RowProblem(6, "renewal_days", "must be between 1 and 3650 days"),
    ]
    first = check.sales[0][1]
    assert (first.category, first.renewal_days) == ("Servicios", 365)


def test_an_import_sets_and_updates_products_with_an_audit(
    session: Session, postventa: Cli, tmp_path: Path, frozen: None
) -> None:
    install_defaults(session, NOW)
    session.commit()
    path = tmp_path / "ventas.csv"
    path.write_text(
        "external_id,sold_at,customer_name,phone,product_sku,category,renewal_days\n"
        "R-1,2026-11-20,Rosa,987654321,MANT-1Y,Servicios,365\n",
        encoding="utf-8",
    )
    assert postventa("import-sales", str(path)).exit_code == 0
    path.write_text(
        "external_id,sold_at,customer_name,phone,product_sku,renewal_days\n"
        "R-2,2026-11-21,Juan,987654322,MANT-1Y,30\n",
        encoding="utf-8",
    )
    assert postventa("import-sales", str(path)).exit_code == 0
    session.rollback()
    product = session.scalars(select(Product)).one()
    assert (product.category, product.renewal_days) == ("Servicios", 30)
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "product.update"))
    assert entry.details["changes"] == {"renewal_days": [365, 30]}
    reminders = session.scalars(
        select(FollowUp.due_at).join(FollowUp.step).where(CadenceStep.key == "renewal-reminder")
    ).all()
    # R-1's moved to 30 days, R-2's planned so: 16 days after each sale, a Sunday for R-1's,
    # so both go on Monday 7 December at 09:00 in Lima.
    assert reminders == [datetime(2026, 12, 7, 14, 0, tzinfo=UTC)] * 2
