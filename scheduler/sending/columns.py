"""Which column of a sales file holds what: our names, the Spanish and English names shops give
them (`telefono`, `Fecha de venta`, `Importe`), or the owner's own mapping, saved for files
with the same header. Plain functions over the header; storing mappings is `column_mappings`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scheduler.sending.intake import FIELDS

REQUIRED = ("external_id", "sold_at", "customer_name")
REACH = ("phone", "email")  # one of them at least
KEEP = ""  # a column kept with the sale as an attribute, under its own name
LEAVE_OUT = "-"  # a column the owner chose not to keep
MAX_ATTRIBUTE_COLUMNS = 30
MAX_MAPPED_COLUMNS = 200  # a file with more is not offered to the owner to map

# Spellings seen in shops' spreadsheets, written as `normal_name` leaves them.
ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": (
        *("id", "id_venta", "venta", "n_venta", "nro_venta", "numero_venta", "numero_de_venta"),
        *("pedido", "n_pedido", "nro_pedido", "numero_pedido", "numero_de_pedido", "boleta"),
        *("factura", "comprobante", "ticket", "order", "order_id", "order_number", "sale_id"),
        "invoice",
    ),
    "sold_at": (
        *("fecha", "fecha_venta", "fecha_de_venta", "fecha_compra", "fecha_de_compra"),
        *("fecha_pedido", "date", "sale_date", "order_date", "sold_on", "purchased_at"),
    ),
    "customer_name": (
        *("cliente", "nombre", "nombre_cliente", "nombre_del_cliente", "nombre_y_apellido"),
        *("nombres_y_apellidos", "name", "customer", "client", "client_name", "full_name"),
    ),
    "phone": (
        *("telefono", "tel", "celular", "cel", "movil", "numero_de_telefono", "telefono_movil"),
        *("mobile", "cell", "phone_number", "mobile_phone"),
    ),
    "email": ("e_mail", "correo", "correo_electronico", "mail", "email_address"),
    "product_sku": (
        "sku",
        "codigo",
        "codigo_producto",
        "cod_producto",
        "item_code",
        "product_code",
    ),
    "product_name": (
        *("producto", "articulo", "descripcion", "nombre_producto", "nombre_del_producto"),
        *("product", "item", "item_name"),
    ),
    "category": ("categoria", "rubro", "familia", "product_category"),
    "renewal_days": (
        *("dias_renovacion", "dias_de_renovacion", "renovacion_dias", "renovacion"),
        *("renewal", "renewal_period", "renews_every_days"),
    ),
    "amount": ("importe", "monto", "total", "precio", "valor", "price", "total_amount"),
    "currency": ("moneda", "divisa"),
    "locale": ("idioma", "language", "lang"),
    "timezone": ("zona_horaria", "time_zone", "tz"),
    "whatsapp_opt_in": ("acepta_whatsapp", "whatsapp_ok", "opt_in_whatsapp", "whatsapp_consent"),
}
_NAMED = {alias: field for field, aliases in ALIASES.items() for alias in aliases}
_NOT_WORD = re.compile(r"[^a-z0-9]+")
# The last column of our own rejected rows (`csv_import.rejected_csv`), in English and Spanish.
REJECTED_BECAUSE = "rejected because"
_REJECTED_BECAUSE = ("rejected_because", "rechazada_porque")


def normal_name(name: str) -> str:
    """A header cell as compared: no accents, lower case, words joined by `_`."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_WORD.sub("_", plain.lower()).strip("_")


def column_key(name: str) -> str:
    """What tells two columns apart: `Teléfono` and `telefono` are one column, and a name
    with no letter of ours (`Ø`) is compared as written."""
    return normal_name(name) or name.strip().lower()


def signature(header: Sequence[str]) -> str:
    """What a saved mapping is found by: the same columns in the same order."""
    return hashlib.sha256("\x1f".join(map(normal_name, header)).encode()).hexdigest()


def guess(header: Sequence[str]) -> list[str]:
    """Each column's field as its name says, else KEEP. Our own name beats a spelling of it,
    and of two spellings of one field the first column wins (the other is kept as written).
    The reasons of our own rejected rows, fixed and imported again, are left out."""
    names = [normal_name(name) for name in header]
    chosen = [
        name if name in FIELDS else LEAVE_OUT if name in _REJECTED_BECAUSE else KEEP
        for name in names
    ]
    taken = set(chosen)  # a set, not `in chosen`: a header may have thousands of columns
    for index, name in enumerate(names):
        field = _NAMED.get(name)
        if chosen[index] == KEEP and field and field not in taken:
            chosen[index] = field
            taken.add(field)
    return chosen


@dataclass(frozen=True)
class Columns:
    """Where each of our fields is, by column index, and the columns kept as attributes."""

    fields: dict[str, int]
    attributes: dict[str, int]


def missing(choices: Sequence[str]) -> list[str]:
    """The required fields that no column holds, as the owner reads them."""
    lacking = [field for field in REQUIRED if field not in choices]
    if not any(field in choices for field in REACH):
        lacking.append("phone or email")
    return lacking


def mapping_problems(header: Sequence[str], choices: Sequence[str]) -> list[str]:
    """Why these choices cannot read the file; empty when they can."""
    problems = []
    lacking = missing(choices)
    if lacking:
        problems.append(f"no column holds {', '.join(lacking)}")
    for field in FIELDS:
        where = [header[i] for i, choice in enumerate(choices) if choice == field]
        if len(where) > 1:
            problems.append(f"{field} is chosen for more than one column: {', '.join(where)}")
    unknown = sorted({c for c in choices if c not in (*FIELDS, KEEP, LEAVE_OUT)})
    if unknown:
        problems.append(f"unknown fields: {', '.join(unknown)}")
    kept = sum(1 for choice in choices if choice == KEEP)
    if kept > MAX_ATTRIBUTE_COLUMNS:
        problems.append(
            f"{kept} columns kept with the sale (at most {MAX_ATTRIBUTE_COLUMNS}): "
            "leave out the others"
        )
    return problems


def columns(header: Sequence[str], saved: Mapping[str, str] | None) -> Columns | list[str]:
    """The columns to read, from the owner's saved mapping (by column name) or from the
    names; or why they cannot be read without the owner mapping them."""
    if saved is not None:
        choices = [saved.get(name.strip(), LEAVE_OUT) for name in header]
    else:
        choices = guess(header)
    problems = mapping_problems(header, choices)
    if problems:
        return problems
    return Columns(
        fields={choice: i for i, choice in enumerate(choices) if choice in FIELDS},
        attributes={
            header[i].strip().lower(): i
            for i, choice in enumerate(choices)
            if choice == KEEP and header[i].strip()
        },
    )
