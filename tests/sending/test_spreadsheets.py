"""Sales files as shops' spreadsheets write them: Spanish names, day-first dates, decimal
commas, local phones, Windows-1252; the owner's column mapping; rejected rows to download."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.config import defaults
from scheduler.defaults import install_defaults
from scheduler.models import ColumnMapping, Sale
from scheduler.sending import csv_import
from scheduler.sending.csv_cells import as_text, spreadsheet_safe
from scheduler.sending.csv_import import (
    NeedsMapping,
    RowProblem,
    Storing,
    UnusableFile,
    check_sales_csv,
    check_table,
    decode,
    read_table,
    rejected_csv,
)
from scheduler.sending.spreadsheet_dates import DateOrder, country_order
from tests.browsing import check_upload, csrf_token, fresh
from tests.conftest import Cli
from tests.factories import NOW

SPANISH = (
    "Pedido;Fecha de venta;Cliente;Teléfono;Correo;Producto;Importe;Moneda;Tienda\r\n"
    "V-1;21/11/2026 15:30;Begoña Núñez;987 654 321;;Lavadora;1.899,00;PEN;Miraflores\r\n"
    "V-2;05/11/2026;José Quispe;;jose@example.pe;Cocina;1899,5;PEN;Surco\r\n"
)


@pytest.fixture
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def _dates(text: str, country: str = "PE") -> tuple[list[str], list[RowProblem]]:
    config = defaults().replace(business={"country": country})
    check = check_sales_csv(text, config, now=NOW)
    lima = config.business.tz
    read = [sale.sold_at.astimezone(lima).strftime("%Y-%m-%d %H:%M") for _l, sale in check.sales]
    return read, check.problems


def _file(*dates: str) -> str:
    rows = "".join(f"D-{n},{date},Rosa,rosa{n}@example.pe\n" for n, date in enumerate(dates))
    return "external_id,sold_at,customer_name,email\n" + rows


def test_a_spanish_export_in_windows_1252_with_a_bom_reads_whole(frozen: None) -> None:
    text, encoding = decode(b"\xef\xbb\xbf" + SPANISH.encode("utf-8"))
    assert encoding == "utf-8" and not text.startswith("\ufeff")
    for data in (text, decode(SPANISH.encode("cp1252"))[0]):
        check = check_sales_csv(data, defaults(), now=NOW)
        assert not check.problems
        (_, first), (_, second) = check.sales
        assert first.external_id == "V-1" and first.customer_name == "Begoña Núñez"
        assert first.sold_at == datetime(2026, 11, 21, 20, 30, tzinfo=UTC)  # 15:30 in Lima
        assert first.phone == "+51987654321" and first.amount == Decimal("1899.00")
        assert first.product_name == "Lavadora" and first.attributes == {"tienda": "Miraflores"}
        assert second.email == "jose@example.pe" and second.amount == Decimal("1899.50")
        assert second.sold_at == datetime(2026, 11, 5, 5, 0, tzinfo=UTC)


def test_the_country_says_the_order_when_the_file_does_not(frozen: None) -> None:
    assert country_order("PE") is DateOrder.DAY_FIRST and country_order("ES")
    assert country_order("US") is DateOrder.MONTH_FIRST
    assert country_order("CA") is None and country_order("JP") is None  # year first
    assert _dates(_file("05/11/2026"))[0] == ["2026-11-05 00:00"]
    assert _dates(_file("11/05/2026 3:30 PM"), "US")[0] == ["2026-11-05 15:30"]
    assert _dates(_file("05-11-26 09:15"))[0] == ["2026-11-05 09:15"]


def test_a_date_only_one_order_can_read_settles_the_whole_file(frozen: None) -> None:
    # A shop's system set up in the United States, a shop in Peru: 11/20 shows it.
    read, problems = _dates(_file("11/05/2026", "11/20/2026"))
    assert read == ["2026-11-05 00:00", "2026-11-20 00:00"] and not problems
    check = check_sales_csv(_file("11/05/2026", "11/20/2026"), defaults(), now=NOW)
    assert check.date_order is not None and check.date_order.evidence == "11/20/2026"


def test_an_ambiguous_date_is_reported_never_guessed(frozen: None) -> None:
    read, problems = _dates(_file("20/11/2026", "11/21/2026", "05/11/2026"))
    assert read == ["2026-11-20 00:00", "2026-11-21 00:00"]  # each could be read one way only
    assert problems == [
        RowProblem(
            4,
            "sold_at",
            "'05/11/2026' could be read day first or month first: "
            "write it as 2026-11-05 or 2026-05-11",
        )
    ]
    assert _dates(_file("05/11/2026"), "CA")[1][0].field == "sold_at"  # Canada: year first
    assert _dates(_file("11/11/2026"), "CA")[0] == ["2026-11-11 00:00"]  # either way the same


@pytest.mark.parametrize("date", ["31/02/2026", "21/11/2026 25:00", "21/11/2026 15:30 pm"])
def test_an_impossible_date_is_named(frozen: None, date: str) -> None:
    _read, problems = _dates(_file(date))
    assert problems == [
        RowProblem(2, "sold_at", f"{date!r} is not a date (such as 27/11/2026 or 27/11/2026 15:30)")
    ]


def test_formula_like_cells_are_text_and_written_back_guarded(frozen: None) -> None:
    text = (
        "external_id,sold_at,customer_name,phone,nota\n"
        'F-1,2026-11-20,"=HYPERLINK(""http://x"")",987654321,@SUM(A1)\n'
        "F-2,2026-11-20,-Rosa,12,+cmd\n"
    )
    check = check_sales_csv(text, defaults(), now=NOW)
    (_, sale), *_ = check.sales
    assert sale.customer_name == '=HYPERLINK("http://x")' and sale.attributes == {
        "nota": "@SUM(A1)"
    }
    written = rejected_csv(check, lambda p: f"{p.field}: {p.message}", "rejected because")
    rows = list(csv.reader(io.StringIO(written)))
    assert rows[0] == [
        "external_id",
        "sold_at",
        "customer_name",
        "phone",
        "nota",
        "rejected because",
    ]
    assert rows[1][:5] == ["F-2", "2026-11-20", "'-Rosa", "12", "'+cmd"]
    assert rows[1][5].startswith("phone: ")
    # Fixed in a spreadsheet and imported again, the guarded cells read as first written.
    fixed = written.replace(",12,", ",987000111,")
    again = check_sales_csv(fixed, defaults(), now=NOW)
    assert [sale.customer_name for _l, sale in again.sales] == ["-Rosa"]
    assert again.sales[0][1].attributes == {"nota": "+cmd"}
    assert as_text(spreadsheet_safe("=1+1")) == "=1+1" and spreadsheet_safe("Rosa") == "Rosa"


UNNAMED = "Ref,Dia,Comprador,Cel,Sucursal\nU-1,21/11/2026,Rosa Quispe,987654321,Centro\n"


def test_columns_named_otherwise_need_the_owner(frozen: None) -> None:
    with pytest.raises(NeedsMapping) as unmapped:
        check_sales_csv(UNNAMED, defaults(), now=NOW)
    assert unmapped.value.choices == ["", "", "", "phone", ""]  # "Cel" says it
    mapping = {"Ref": "external_id", "Dia": "sold_at", "Comprador": "customer_name"}
    mapping |= {"Cel": "phone", "Sucursal": "-"}
    check = check_sales_csv(UNNAMED, defaults(), now=NOW, mapping=mapping)
    assert not check.problems and check.sales[0][1].attributes == {}


def test_a_header_too_wide_to_map_is_refused_whole(frozen: None) -> None:
    header = ",".join(f"c{n}" for n in range(201))
    with pytest.raises(UnusableFile) as refused:
        check_sales_csv(f"{header}\n{',' * 200}x\n", defaults(), now=NOW)
    assert not isinstance(refused.value, NeedsMapping)
    assert str(refused.value).startswith("line 1: the header lacks external_id")


def _map(client: FlaskClient, text: str, choices: list[str]) -> tuple[int, str]:
    data = {"csrf_token": csrf_token(client, "/sales/import"), "action": "map", "content": text}
    data |= {f"column-{i}": choice for i, choice in enumerate(choices)}
    answer = client.post("/sales/import", data=data)
    return answer.status_code, answer.get_data(as_text=True)


def test_the_owner_maps_a_file_once_and_the_next_one_reads_alone(
    frozen: None, owner_client: FlaskClient, session: Session, postventa: Cli, tmp_path: Path
) -> None:
    install_defaults(session, NOW)
    session.commit()
    asked = check_upload(owner_client, UNNAMED.encode())
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "What does each column hold?" in page
    assert "Comprador" in page and "Rosa Quispe" in page  # the columns and their first values
    status, page = _map(owner_client, UNNAMED, ["external_id", "external_id", "", "", ""])
    assert status == 422 and "external_id is chosen for more than one column: Ref, Dia" in page
    assert session.scalar(select(func.count()).select_from(ColumnMapping)) == 0
    choices = ["external_id", "sold_at", "customer_name", "phone", "-"]
    status, page = _map(owner_client, UNNAMED, choices)
    assert status == 200 and "1 rows: 1 good, 0 rejected." in page
    # The next file with these columns: checked at once, on the page and on the command line.
    later = UNNAMED.replace("U-1", "U-2")
    checked = check_upload(owner_client, later.encode()).get_data(as_text=True)
    assert (
        "1 rows: 1 good, 0 rejected." in checked and "Columns read as you mapped them." in checked
    )
    path = tmp_path / "ventas.csv"
    path.write_text(later, encoding="utf-8")
    assert postventa("import-sales", str(path)).exit_code == 0
    fresh(session)
    assert session.scalars(select(Sale.external_id)).all() == ["U-2"]
    again = owner_client.post(
        "/sales/import",
        data={"csrf_token": csrf_token(owner_client, "/sales/import"), "action": "remap"}
        | {"content": later},
    ).get_data(as_text=True)
    assert '<option value="customer_name" selected>' in again


def test_the_command_line_says_how_to_map_an_unknown_file(
    frozen: None, postventa: Cli, tmp_path: Path, session: Session
) -> None:
    path = tmp_path / "ventas.csv"
    path.write_text(UNNAMED, encoding="utf-8")
    refused = postventa("import-sales", str(path))
    assert refused.exit_code == 2 and "map its columns once on the import page" in refused.stderr


def test_rejected_rows_download_as_a_csv_with_the_reason(
    frozen: None, staff_client: FlaskClient, session: Session, postventa: Cli, tmp_path: Path
) -> None:
    text = _file("21/11/2026", "ayer") + "D-9,21/11/2026,=1+1,rosa@\n"
    answer = staff_client.post(
        "/sales/import",
        data={"csrf_token": csrf_token(staff_client, "/sales/import"), "action": "rejected"}
        | {"content": text},
    )
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    body = answer.get_data(as_text=True)
    assert body.startswith("\ufeff")  # for Excel
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert rows[0] == ["external_id", "sold_at", "customer_name", "email", "rejected because"]
    assert [row[0] for row in rows[1:]] == ["D-1", "D-9"]
    assert rows[2][2] == "'=1+1" and rows[2][4].startswith("email: ")
    assert session.scalar(select(func.count()).select_from(Sale)) == 0  # nothing imported
    path, out = tmp_path / "ventas.csv", tmp_path / "rechazadas.csv"
    path.write_text(text, encoding="utf-8")
    assert postventa("import-sales", str(path), "--dry-run", "--rejected", str(out)).exit_code == 1
    assert out.read_bytes().decode("utf-8-sig") == body.removeprefix("\ufeff")


def test_a_rejected_file_that_cannot_be_written_stops_the_import_before_it_stores(
    frozen: None, postventa: Cli, tmp_path: Path, session: Session
) -> None:
    install_defaults(session, NOW)
    session.commit()
    path = tmp_path / "ventas.csv"
    path.write_text(SPANISH, encoding="utf-8")
    nowhere = tmp_path / "no-such-folder" / "rechazadas.csv"
    result = postventa("import-sales", str(path), "--rejected", str(nowhere))
    assert result.exit_code == 2 and "No such file or directory" in result.output
    assert session.scalar(select(func.count()).select_from(Sale)) == 0


def test_a_row_recorded_before_with_other_content_is_named(
    frozen: None, postventa: Cli, tmp_path: Path, session: Session, owner_client: FlaskClient
) -> None:
    install_defaults(session, NOW)
    session.commit()
    path = tmp_path / "ventas.csv"
    path.write_text(SPANISH, encoding="utf-8")
    assert postventa("import-sales", str(path)).exit_code == 0
    again = postventa("import-sales", str(path))
    assert again.exit_code == 0 and "imported 0 new, 2 known" in again.stdout  # a repeat
    changed = SPANISH.replace("1.899,00", "1.999,00")
    path.write_text(changed, encoding="utf-8")
    differs = postventa("import-sales", str(path))
    assert differs.exit_code == 1 and "imported 0 new, 2 known" in differs.stdout
    assert (
        "line 2, amount: already recorded with other content, left as recorded: "
        "recorded as 1899.00, sent as 1999.00" in differs.stderr
    )
    fresh(session)
    assert session.scalar(select(Sale.amount).where(Sale.external_id == "V-1")) == Decimal(
        "1899.00"
    )
    page = owner_client.post(
        "/sales/import",
        data={"csrf_token": csrf_token(owner_client, "/sales/import"), "action": "import"}
        | {"content": changed},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert (
        "Rows already recorded with other content, left as recorded (1): lines 2 (amount: " in page
    )


def test_a_large_file_is_checked_on_every_core_with_the_same_result(
    frozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [f"P-{n},2{n % 3}/11/2026,Cliente {n},9{n:08d}" for n in range(40)]
    rows += ["P-3,21/11/2026,Otra,987654321", "P-99,ayer,Nadie,12", "P-98,05/11/2026,A,987"]
    text = "external_id,sold_at,customer_name,phone\n" + "\n".join(rows) + "\n"
    alone = check_sales_csv(text, defaults(), now=NOW)
    monkeypatch.setattr(csv_import, "PARALLEL_FROM", 10)
    monkeypatch.setattr(csv_import, "PARALLEL_CHUNK", 7)
    shared = check_sales_csv(text, defaults(), now=NOW)
    assert shared.sales == alone.sales and shared.problems == alone.problems
    assert len(shared.sales) == 40 and [p.line for p in shared.problems] == [42, 43, 43, 44]


class BreaksAfterOnePart:
    """A process pool whose workers die after the first part they hand back."""

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        pass

    def __enter__(self) -> BreaksAfterOnePart:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def map(self, function: Any, *arguments: Any) -> Iterator[Any]:
        calls = zip(*arguments, strict=False)
        yield function(*next(calls))
        raise BrokenProcessPool("a worker was killed")


def test_a_pool_that_breaks_part_way_leaves_the_rest_to_this_process(
    frozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _file(*[f"2{n % 3}/11/2026" for n in range(40)])
    alone = check_sales_csv(text, defaults(), now=NOW)
    monkeypatch.setattr(csv_import, "PARALLEL_FROM", 10)
    monkeypatch.setattr(csv_import, "PARALLEL_CHUNK", 7)
    monkeypatch.setattr(csv_import, "ProcessPoolExecutor", BreaksAfterOnePart)
    # 21 checked here while the pool starts, 7 by the pool before it broke, 12 here again.
    assert check_sales_csv(text, defaults(), now=NOW).sales == alone.sales
    assert len(alone.sales) == 40


class KeepsCount(BreaksAfterOnePart):
    """A process pool that works, and remembers how it was shut down."""

    shutdowns: list[bool] = []

    def map(self, function: Any, *arguments: Any) -> Iterator[Any]:
        return (function(*call) for call in zip(*arguments, strict=False))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shutdowns.append(cancel_futures)


def test_an_import_stopped_part_way_cancels_the_check_of_the_rest(
    frozen: None, monkeypatch: pytest.MonkeyPatch, session: Session
) -> None:
    text = _file(*[f"2{n % 3}/11/2026" for n in range(40)])
    monkeypatch.setattr(csv_import, "PARALLEL_FROM", 10)
    monkeypatch.setattr(csv_import, "PARALLEL_CHUNK", 7)
    monkeypatch.setattr(csv_import, "ProcessPoolExecutor", KeepsCount)
    monkeypatch.setattr(KeepsCount, "shutdowns", [])

    def interrupted(self: Storing, part: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Storing, "add", interrupted)
    storing = Storing(session, config=defaults(), now=NOW, actor="t", chunk=5)
    with pytest.raises(KeyboardInterrupt):
        check_table(read_table(text), defaults(), now=NOW, storing=storing)
    assert KeepsCount.shutdowns == [True]  # what the pool had not started is cancelled


def test_a_pool_that_cannot_start_leaves_the_check_to_this_process(
    frozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise BrokenProcessPool("a calling script without a __main__ guard")

    text = _file(*[f"2{n % 3}/11/2026" for n in range(30)])
    alone = check_sales_csv(text, defaults(), now=NOW)
    monkeypatch.setattr(csv_import, "PARALLEL_FROM", 10)
    monkeypatch.setattr(csv_import, "ProcessPoolExecutor", broken)
    assert check_sales_csv(text, defaults(), now=NOW).sales == alone.sales
    assert len(alone.sales) == 30
