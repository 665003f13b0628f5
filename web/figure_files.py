"""The dashboard's lists as CSV files to save: what customers complained about, and the
customers at risk. Text is made safe for spreadsheets; counts stay numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from flask import Response

from scheduler.figures.at_risk import AtRisk
from scheduler.figures.complaints import ThemeCount
from scheduler.figures.period import Period
from scheduler.sending.csv_cells import spreadsheet_safe
from web.domain_texts import theme_name, why

Cell = str | int | None


def csv_file(
    header: Sequence[str], rows: Iterable[Sequence[str | int]], name: str, first: str, last: str
) -> Response:
    """Rows as a CSV file to save, named after what and which days (`first`, `last`:
    YYYY-MM-DD); the cells as given, made safe by the caller."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, csv.excel)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}-{first}-{last}.csv"'},
    )


def table_download(
    header: Sequence[str], rows: Iterable[Sequence[Cell]], name: str, period: Period
) -> Response:
    """A list as a CSV file of the period: counts stay numbers, text is made safe."""
    safe_rows = (
        [cell if isinstance(cell, int) else spreadsheet_safe(cell or "") for cell in row]
        for row in rows
    )
    return csv_file(header, safe_rows, name, period.first.isoformat(), period.last.isoformat())


def complaints_csv(themes: Sequence[ThemeCount], period: Period) -> Response:
    """One line per product, theme and example reply (the theme's count on each)."""
    rows = (
        (
            row.product,
            row.sku,
            row.theme.value if row.theme else None,
            theme_name(row.theme),
            row.count,
            row.customers,
            example.at.astimezone(period.tz).isoformat(timespec="minutes"),
            example.customer_id,
            example.text,
        )
        for row in themes
        for example in row.examples
    )
    header = (
        "product",
        "sku",
        "theme",
        "theme_name",
        "complaints",
        "customers",
        "example_at",
        "customer_id",
        "example",
    )
    return table_download(header, rows, "postventa-complaints", period)


def at_risk_csv(risks: Sequence[AtRisk], period: Period) -> Response:
    """One line per customer and sign, the latest first."""
    rows = (
        (
            risk.customer_id,
            risk.name,
            signal.sign.value,
            signal.at.astimezone(period.tz).isoformat(timespec="minutes"),
            signal.count,
            why(signal),
            risk.open_case_id,
        )
        for risk in risks
        for signal in risk.signals
    )
    header = ("customer_id", "name", "sign", "at", "count", "why", "open_case_id")
    return table_download(header, rows, "postventa-at-risk", period)
