"""The admin in Spanish and English: every text translated, the compiled catalog current, and
each person's own language used."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from scheduler.models import User
from tests.browsing import log_in
from tests.conftest import STAFF

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "web" / "translations" / "es" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdf]")


def _text(value: object) -> str:
    """A message's text; a plural's forms one per line (a catalog keeps them in a list or a
    tuple, as it was read)."""
    return "\n".join(value) if isinstance(value, list | tuple) else str(value)


def _catalog() -> dict[tuple[str | None, str], str]:
    """Spanish by (context, English): "cancelled" is cancelado for a follow-up, cancelada for a
    sale. A plural's forms are all there, or it counts as untranslated."""
    with (CATALOG / "messages.po").open("rb") as handle:
        return {
            (m.context, _text(m.id)): _text(m.string) if all(m.string or [""]) else ""
            for m in read_po(handle)
            if m.id and not m.fuzzy
        }


def test_every_text_of_the_admin_is_translated_to_spanish() -> None:
    method_map = [("web/**.py", "python"), ("web/templates/**.html", "jinja2")]
    keywords = {
        "_": None,
        "gettext": None,
        "_l": None,
        "lazy_gettext": None,
        "N_": None,
        "lazy_pgettext": ((1, "c"), 2),
        "ngettext": (1, 2),
    }
    found = {
        (context, _text(message))
        for _file, _line, message, _comments, context in extract_from_dir(
            str(ROOT), method_map, keywords=keywords
        )
    }
    catalog = _catalog()
    missing = sorted(text for text in found if not catalog.get(text))
    assert not missing, f"run `make translations` and translate: {missing[:5]}"
    assert len(found) > 250


def test_translations_keep_their_placeholders() -> None:
    wrong = [
        text
        for (_context, text), spanish in _catalog().items()
        if sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(spanish))
    ]
    assert wrong == []


def test_the_compiled_catalog_is_current() -> None:
    with (CATALOG / "messages.mo").open("rb") as handle:
        compiled = {(m.context, _text(m.id)): _text(m.string) for m in read_mo(handle) if m.id}
    assert compiled == _catalog(), "run `make translations` to compile the catalog"


def test_each_person_reads_the_admin_in_their_language(
    client: FlaskClient, staff: User, session: Session
) -> None:
    assert log_in(client, *STAFF).status_code == 302
    assert ">Inbox</a>" in client.get("/inbox").get_data(as_text=True)
    staff.locale = "es"
    session.commit()
    page = client.get("/inbox").get_data(as_text=True)
    assert ">Bandeja</a>" in page and 'lang="es"' in page


def test_the_login_page_follows_the_browser(client: FlaskClient, staff: User) -> None:
    spanish = client.get("/login", headers={"Accept-Language": "es-PE,es;q=0.9"})
    english = client.get("/login", headers={"Accept-Language": "en-US"})
    assert "Iniciar sesión" in spanish.get_data(
        as_text=True
    ) or "Inicia sesión" in spanish.get_data(as_text=True)
    assert "Log in" in english.get_data(as_text=True)


def test_the_domains_refusals_are_translated_too(app: Flask) -> None:
    from web.domain_texts import translated

    with app.test_request_context(headers={"Accept-Language": "es"}):
        assert translated("the reply is empty") == "la respuesta está vacía"
        assert translated("the note is empty; at most 100 characters") == (
            "la nota está vacía; 100 caracteres como máximo"
        )
        assert translated("Rosa cannot log in any more") == "Rosa ya no puede iniciar sesión"
        assert translated("an SMS can have at most 1600 characters (1700 given)") == (
            "un SMS puede tener como máximo 1600 caracteres (tiene 1700)"
        )
        provider = "21614: 'To' number is not a valid mobile number"
        assert translated(provider) == provider  # a provider's words stay its own
