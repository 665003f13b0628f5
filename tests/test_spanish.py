"""Spanish that is really Spanish: every page of the admin in the reader's language, with no
English left over; every Spanish text customers and staff read with its accents; the error
pages in Spanish too, inside the app's layout."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.mofile import read_mo
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from scheduler.accounts import add_user
from scheduler.casework.cases import AT_RISK, deadline_words
from scheduler.casework.notice_texts import TEXTS as NOTICE_TEXTS
from scheduler.casework.staff_actions import RemedyKind
from scheduler.clock import utcnow
from scheduler.config import parse_window
from scheduler.defaults import install_defaults
from scheduler.lifecycle import (
    Anchor,
    CaseStatus,
    Channel,
    Direction,
    FollowUpStatus,
    MessageStatus,
    ProviderStatus,
    RemedyStatus,
    Role,
    SaleStatus,
)
from scheduler.listening.classify import Label
from scheduler.listening.themes import Theme
from scheduler.models import (
    ApiToken,
    Cadence,
    CadenceStep,
    Case,
    CaseNote,
    Customer,
    LexiconWord,
    Message,
    MessageTemplate,
    OutboxEntry,
    Product,
    Remedy,
    Sale,
    SavedAnswer,
    User,
)
from scheduler.sending.composing import NO_PRODUCT, REPLY_INSTRUCTIONS
from scheduler.sending.due_times import SendRules, Step, plan_step
from scheduler.sending.presend import Situation, decide
from scheduler.worker import read_replies
from tests.browsing import check_upload, csrf_token, fresh, log_in, use_config
from tests.conftest import OWNER, STAFF
from tests.dispatching import dispatcher
from tests.factories import NOW
from web.admin.cadences import LANES
from web.auth import PUBLIC
from web.domain_texts import NAMES, named, translated

ROOT = Path(__file__).resolve().parent.parent

# Common words of the admin's English that are never Spanish. Not here: words Spanish shares
# ("error", "local", "total", "sale" as in "sale en unos segundos"), identifiers shown as code
# (a transport called "outbox", a condition such as "score >= 9") and all-capital keywords.
ENGLISH = frozenset(
    """
    the and of to with for from this that these those your you our we they them their it its
    is are was were be been has have had not nothing yet here there when what who which where
    why how if or but by at on in into out up off over after before since until within between
    about every all any some none other only also too more less than then just first last next
    new old yes may can cannot must will would should please again something went wrong found
    overdue scheduled sending sent delivered undelivered failed skipped cancelled canceled held
    unknown uncertain prepared queued stored received receiving accepted pending waiting
    objection complaint question positive opt-out opt-in help discount refund replacement
    remedy remedies granted requested declined approve approved approval decline withdraw
    save cancel customer customers sales reply replies open opened resolved resolve reopened
    case cases follow-up follow-ups left hours hour minutes days day week weeks settings
    owner owners staff inbox search send message messages add remove edit edited name phone
    consent timeline note notes internal conversation assigned assign answered automatic
    overview channel channels health latest sold business review thanks reminder renewal check
    preview subject segment segments characters late grace planned kind value
    outcome nobody mine unmatched import file rows line field problem record change disabled
    page back log login logout password account users user role active inactive default
    template templates cadence cadences step steps words word meaning audit details filter
    amount product products language current created used revoked revoke copy shown hashed
    welcome form expired request method address larger completed front reload try moment
    time zone window per read unread people person owner's customer's
    """.split()
)
BRANDS = frozenset({"twilio", "sms", "email", "csv", "api", "whatsapp", "postventa"})

# Spanish words whose unaccented spelling is never correct Spanish ("mas", "esta", "paso",
# "quedo" or "numero" are left out: without the accent they are other words).
ACCENTED = """
    días día fácil difícil rápido rápida rápidamente único única básico básica técnico técnica
    automático automática automáticos automáticamente electrónico electrónica teléfono
    teléfonos telefónico código códigos crédito mínimo mínima máximo máxima próximo próxima
    próximos categoría categorías garantía política políticas útil móvil carácter método
    éxito información compensación atención dirección sesión acción razón revisión opción
    condición cancelación configuración suscripción aprobación notificación conversación
    comunicación devolución solución creación descripción calificación confirmación
    eliminación importación versión función aquí allí ahí así también después además quizá
    quizás todavía según algún ningún jamás atrás detrás últimamente escribió recibió
    respondió pidió resolvió aprobó envío envíos volverás recibirás podrás tendrás estará
    vacío vacía opinión contraseña contraseñas mañana pequeño pequeña dueño dueña reseña
    reseñas señal compañía tamaño sábado miércoles había podía quería
""".split()
UNACCENTED = {word.translate(str.maketrans("áéíóúñ", "aeioun")): word for word in ACCENTED}
WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


# --- reading a page as a person does ----------------------------------------------------------


class _Text(HTMLParser):
    """The words a person reads: text and the attributes read aloud or shown on hover; not
    scripts, styles, code (identifiers, commands) or what is typed into a form."""

    SKIPPED = frozenset({"script", "style", "code", "textarea", "datalist"})
    READ = frozenset({"title", "aria-label", "placeholder", "alt"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif not self.skipping:
            self.parts += [value for name, value in attrs if name in self.READ and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def english_words(html: str, data: list[str]) -> list[str]:
    """The English words of `html` once the data people typed or configured is taken out."""
    reader = _Text()
    reader.feed(html)
    text = re.sub(r"\{[{%].*?(?:[}%]\}|$)", " ", "\n".join(reader.parts), flags=re.M)  # Jinja
    for value in data:  # longest first, so a name inside a message goes with the message
        text = text.replace(value, " ")
    found = []
    for chunk in text.split():
        if re.search(r"[\d_@/]|\w\.\w", chunk):
            continue  # an identifier, an address, a number, a time, a path
        for word in WORD.findall(chunk):
            lower = word.lower()
            if len(word) > 1 and word.isupper() or lower in BRANDS:
                continue  # STOP, CSV, SKU: keywords and acronyms
            if lower in ENGLISH:
                found.append(word)
    return found


def _data(session: Session) -> list[str]:
    """Everything in the database that people wrote or configured: shown as it is."""
    columns = [
        Customer.name,
        Customer.email,
        Customer.phone,
        Product.name,
        Product.sku,
        Sale.external_id,
        Message.body,
        Message.subject,
        Message.from_address,
        Message.to_address,
        OutboxEntry.body,
        OutboxEntry.subject,
        OutboxEntry.to_address,
        CaseNote.body,
        Remedy.description,
        Case.outcome,
        LexiconWord.word,
        ApiToken.name,
        ApiToken.prefix,
        User.email,
        Cadence.name,
        CadenceStep.key,
        CadenceStep.template_name,
        CadenceStep.condition,
        MessageTemplate.name,
        MessageTemplate.body,
        MessageTemplate.subject,
    ]
    values = {str(v) for column in columns for v in session.scalars(select(column)) if v}
    return sorted(values, key=len, reverse=True)


# --- a Postventa in use, set up through its own pages ----------------------------------------


def post(client: FlaskClient, url: str, data: dict[str, str], page: str) -> str:
    """Submit a form as the browser does, and return the page it leads to (with its notice)."""
    answer = client.post(
        url, data={**data, "csrf_token": csrf_token(client, page)}, follow_redirects=True
    )
    assert answer.status_code == 200, (url, answer.status_code)
    return answer.get_data(as_text=True)


@pytest.fixture
def in_use(
    app: Flask, session: Session, owner: User, staff: User
) -> Iterator[tuple[FlaskClient, dict[str, int | str], dict[str, str]]]:
    """An owner who reads Spanish, with sales, a complaint, remedies, an opt-out, a cancelled
    sale, a token and a word of their own, all made through the admin; and every page they
    saw on the way (with the notice each action left)."""
    now = utcnow()
    use_config(app, cases={"notify_emails": [OWNER[0]]})
    install_defaults(session, now)
    session.execute(delete(MessageTemplate).where(MessageTemplate.locale == "en"))
    owner.locale = staff.locale = "es"
    session.commit()
    client, colleague = app.test_client(), app.test_client()
    assert log_in(client, *OWNER).status_code == 302
    assert log_in(colleague, *STAFF).status_code == 302
    seen = {}
    lima = ZoneInfo("America/Lima")
    for number, name, phone, email, days in [
        ("B001-1", "Rosa Quispe", "+51987654321", "", 1),
        ("B001-2", "Jorge Salazar", "+51987654322", "jorge@example.pe", 60),
        ("B001-3", "Lucía Fernández", "", "lucia@example.pe", 2),
    ]:
        sold = (now - timedelta(days=days)).astimezone(lima).strftime("%Y-%m-%dT%H:%M")
        seen[f"sale {number}"] = post(
            client,
            "/sales/new",
            {
                "external_id": number,
                "sold_at": sold,
                "customer_name": name,
                "phone": phone,
                "email": email,
                "product_sku": "LAV-9",
                "product_name": "Lavadora EcoWash",
                "amount": "1899.00",
                "currency": "PEN",
            },
            "/sales/new",
        )
    for sender, body in [
        ("+51987654321", "la lavadora llegó rota y nadie me responde"),
        ("+51987654322", "BAJA"),
        ("+51999000111", "hola, compré una cocina la semana pasada"),
    ]:
        seen[f"reply {body}"] = post(
            client, "/outbox/simulate", {"sender": sender, "body": body}, "/outbox"
        )
    fresh(session)
    case = session.scalars(select(Case)).one()
    rosa, lucia = (
        session.scalars(select(Customer).where(Customer.name == name)).one()
        for name in ("Rosa Quispe", "Lucía Fernández")
    )
    at = f"/cases/{case.id}"
    seen["note"] = post(client, f"{at}/notes", {"body": "llamarla después de las 5"}, at)
    seen["reply"] = post(
        client,
        f"{at}/reply",
        {"channel": "sms", "subject": "", "body": "Hola Rosa, mañana te llamamos."},
        at,
    )
    seen["discount"] = post(
        client,
        f"{at}/remedies",
        {"kind": "discount", "value": "10", "description": "10 % en la próxima compra"},
        at,
    )
    seen["refund"] = post(
        colleague,
        f"{at}/remedies",
        {"kind": "refund", "value": "500", "description": "devolución parcial"},
        at,
    )
    sale = session.scalars(select(Sale).where(Sale.customer_id == lucia.id)).one()
    seen["cancel"] = post(
        client,
        f"/sales/{sale.id}/cancel",
        {"reason": "la clienta devolvió el producto"},
        f"/customers/{lucia.id}",
    )
    seen["consent"] = post(
        client,
        f"/customers/{lucia.id}/consent",
        {"channel": "email", "action": "out", "reason": "lo pidió por teléfono"},
        f"/customers/{lucia.id}",
    )
    assert "Dado de baja de correo" in seen["consent"]
    seen["token"] = post(
        client, "/admin/tokens", {"name": "la caja de Miraflores"}, "/admin/tokens"
    )
    seen["word"] = post(
        client, "/admin/words", {"label": "objection", "word": "chancada"}, "/admin/words"
    )
    seen["answer"] = post(
        client,
        "/answers/new",
        {"title": "Disculpa", "locale": "es", "body": "Hola {{ customer.first_name }}"},
        "/answers/new",
    )
    seen["product"] = post(
        client,
        "/products/LAV-9",
        {"name": "Lavadora EcoWash", "category": "Línea blanca", "renewal_days": "365"},
        "/products/LAV-9",
    )
    services = app.extensions["postventa"]  # the worker sends what was queued
    read_replies(dispatcher(services.sessions, services.config, utcnow))
    fresh(session)
    template = session.scalars(
        select(MessageTemplate).where(
            MessageTemplate.locale == "es",
            MessageTemplate.name == "thanks",
            MessageTemplate.channel == Channel.SMS,
        )
    ).one()
    cadence = session.scalars(select(Cadence)).one()
    unmatched = session.scalars(
        select(Message).where(Message.customer_id.is_(None), Message.direction == Direction.INBOUND)
    ).one()
    ids: dict[str, int | str] = {
        "answer_id": session.scalars(select(SavedAnswer.id)).one(),
        "case_id": case.id,
        "customer_id": rosa.id,
        "template_id": template.id,
        "cadence_id": cadence.id,
        "message_id": unmatched.id,
        "sku": "LAV-9",
    }
    yield client, ids, seen


def _pages(app: Flask, ids: dict[str, int | str]) -> list[str]:
    """Every page the admin's route sweep opens (tests/test_permissions.py), with real rows."""
    urls = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
        if "GET" not in (rule.methods or ()) or blueprint in PUBLIC or rule.endpoint == "static":
            continue
        unknown = rule.arguments - set(ids)
        assert not unknown, f"{rule.rule}: give the sweep a row for {unknown} (fixture in_use)"
        urls.append(rule.build({name: ids[name] for name in rule.arguments})[1])  # type: ignore[index]
    extra = [
        "/inbox?tab=mine",
        "/inbox?tab=unmatched",
        "/customers?q=nadie",
        "/customers?sort=name",
        "/admin/words?try=la+cocina+vino+chancada",
        "/admin/audit?action=case.",
        "/outbox?q=nadie",
    ]
    return sorted(urls) + extra


def test_every_page_of_the_admin_reads_in_spanish(
    app: Flask, session: Session, in_use: tuple[FlaskClient, dict[str, int | str], dict[str, str]]
) -> None:
    client, ids, seen = in_use
    pages = {url: client.get(url) for url in _pages(app, ids)}
    assert all(page.status_code == 200 for page in pages.values()), {
        url: page.status_code for url, page in pages.items() if page.status_code != 200
    }
    # Pages, not data files: the figures' CSVs are named by the API's keys, in every language,
    # and the inbox's poll is numbers for its script.
    html = {
        url: page.get_data(as_text=True)
        for url, page in pages.items()
        if page.mimetype == "text/html"
    } | seen
    assert sorted(url for url in pages if url not in html) == [
        "/admin/complaints.csv",
        "/admin/figures.csv",
        "/at-risk.csv",
        "/customers/1/data.json",
        "/inbox/waiting.json",
    ]
    html["/login"] = (
        app.test_client().get("/login", headers={"Accept-Language": "es"}).get_data(as_text=True)
    )
    assert len(html) >= 25
    data = _data(session)
    leftovers = {url: words for url, text in html.items() if (words := english_words(text, data))}
    assert leftovers == {}
    # The sweep saw what it is about: statuses, reasons and names, in Spanish.
    rosa = html[f"/customers/{ids['customer_id']}"]
    assert "queja" in html["/inbox"] and "en espera" in rosa and "caso abierto" in rosa
    others = {}
    for name in ("Jorge Salazar", "Lucía Fernández"):
        customer = session.scalars(select(Customer).where(Customer.name == name)).one()
        others[name] = client.get(f"/customers/{customer.id}").get_data(as_text=True)
        assert english_words(others[name], data) == [], name
    assert "de retraso al programarse (margen de" in others["Jorge Salazar"]
    assert "dado de baja" in others["Jorge Salazar"] and "(respondió " in others["Jorge Salazar"]
    assert "cancelada" in others["Lucía Fernández"] and "cancelado" in others["Lucía Fernández"]
    case = html[f"/cases/{ids['case_id']}"]
    assert "descuento" in case and "reembolso" in case and "solicitada" in case


def test_the_english_reader_still_reads_english(
    app: Flask, session: Session, in_use: tuple[FlaskClient, dict[str, int | str], dict[str, str]]
) -> None:
    client, ids, _seen = in_use
    owner = session.scalars(select(User).where(User.email == OWNER[0])).one()
    owner.locale = "en"
    session.commit()
    case = client.get(f"/cases/{ids['case_id']}").get_data(as_text=True)
    assert "objection" in case and "discount" in case and "requested" in case
    assert english_words(client.get("/").get_data(as_text=True), []) != []


# --- accents ----------------------------------------------------------------------------------


def _spanish_texts() -> dict[str, str]:
    """Every Spanish text customers and staff read, by where it comes from."""
    texts: dict[str, str] = {}
    with (ROOT / "web/translations/es/LC_MESSAGES/messages.mo").open("rb") as handle:
        for message in read_mo(handle):
            if message.id:
                texts[f"messages.mo: {message.id!r}"] = str(message.string)
    for path in sorted((ROOT / "message_templates").glob("*/es/*.txt")):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    spanish = NOTICE_TEXTS["es"]
    for field, value in vars(spanish).items():
        texts[f"scheduler/casework/notice_texts.py: es.{field}"] = str(value)
    for (channel, locale), text in REPLY_INSTRUCTIONS.items():
        if locale == "es":
            texts[f"scheduler/sending/composing.py: REPLY_INSTRUCTIONS {channel}"] = text
    texts["scheduler/sending/composing.py: NO_PRODUCT"] = NO_PRODUCT["es"]
    for source in ("web/templates/unsubscribe.html", "scheduler/demo.py"):
        texts[source] = (ROOT / source).read_text(encoding="utf-8")
    now, tz = utcnow(), ZoneInfo("America/Lima")
    for days in (0, 1, 5):
        due = now + timedelta(days=days)
        texts[f"deadline_words in {days} days"] = deadline_words(due, now, tz, "es")
    return texts


def test_spanish_texts_carry_their_accents() -> None:
    texts = _spanish_texts()
    assert len(texts) > 300
    missing = [
        f"{where}: {word} (→ {UNACCENTED[word.lower()]})"
        for where, text in texts.items()
        for word in re.findall(r"[^\W\d_]+", text)
        if word.lower() in UNACCENTED
    ]
    assert missing == []


def test_the_accent_list_knows_the_common_mistakes() -> None:
    assert len(UNACCENTED) >= 100
    for wrong in ("dias", "escribio", "compensacion", "telefono", "contrasena", "volveras"):
        assert wrong in UNACCENTED
    for spanish in ("mas", "esta", "paso", "quedo", "numero", "solo"):
        assert spanish not in UNACCENTED  # correct Spanish without the accent, as other words


# --- error pages ------------------------------------------------------------------------------


@pytest.fixture
def reader(app: Flask, owner: User, session: Session) -> FlaskClient:
    owner.locale = "es"
    session.commit()
    client = app.test_client()
    assert log_in(client, *OWNER).status_code == 302
    return client


def _in_the_layout(page: str) -> bool:
    return 'lang="es"' in page and '<header class="bar">' in page and "</main>" in page


def test_a_missing_page_is_spanish_in_the_layout(reader: FlaskClient, app: Flask) -> None:
    answer = reader.get("/nada-por-aqui")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 404 and _in_the_layout(page)
    assert "<h1>Página no encontrada</h1>" in page and english_words(page, []) == []
    stranger = app.test_client().get("/cases/999999", headers={"Accept-Language": "es"})
    assert stranger.status_code in (302, 404)  # behind the log-in first
    anonymous = app.test_client().get("/nada", headers={"Accept-Language": "es-PE"})
    assert anonymous.status_code == 404 and "Página no encontrada" in anonymous.get_data(
        as_text=True
    )
    assert reader.get("/cases/999999").status_code == 404


def test_a_sale_refused_says_why_in_spanish(reader: FlaskClient) -> None:
    typed = reader.post(
        "/sales/new",
        data={
            "csrf_token": csrf_token(reader, "/sales/new"),
            "external_id": "",
            "sold_at": "ayer",
            "customer_name": "Rosa",
            "amount": "mil",
            "currency": "soles",
            "timezone": "Lima",
        },
    )
    page = typed.get_data(as_text=True)
    assert typed.status_code == 422 and "es obligatorio" in page and "no es un número" in page
    assert english_words(page, []) == []
    csv = "external_id,sold_at,customer_name,phone\nB1,ayer,Rosa,+51987654321\nB1,x\n"
    checked = check_upload(reader, csv.encode())
    page = checked.get_data(as_text=True)
    assert "no es una fecha y hora ISO 8601" in page and "tiene 2 campos" in page
    assert english_words(page, []) == []


def _as_posted(shown: dict[str, dict[str, object]]) -> dict[str, object]:
    """The settings form as the browser posts it, unchanged."""
    posted: dict[str, object] = {}
    for section, values in shown.items():
        for key, value in values.items():
            name = f"{section}.{key}"
            if isinstance(value, bool):
                posted |= {name: "on"} if value else {}
            elif isinstance(value, dict):
                posted |= {f"{name}.{day}": hours for day, hours in value.items()}
            elif isinstance(value, list):
                posted[name] = value if key == "send_days" else "\n".join(map(str, value))
            else:
                posted[name] = str(value)
    return posted


def test_settings_refused_say_why_in_spanish(reader: FlaskClient) -> None:
    edits = {
        "business.send_window": "20:00-09:00",
        "cases.escalation_levels": "dos",
        "business.timezone": "Lima",
        "cadences.min_gap_hours": "-1",
        "business.review_url": "www.example.pe",
        "cases.notify_sms": "987654321",
        "cases.opening_hours.mon": "18:00-09:00",
    }
    form = reader.get("/admin/settings").get_data(as_text=True)
    shown = json.loads(html.unescape(re.findall(r'name="loaded" value="([^"]*)"', form)[0]))
    answer = reader.post(
        "/admin/settings",
        data={
            **_as_posted(shown),
            **edits,
            "csrf_token": csrf_token(reader, "/admin/settings"),
            "loaded": json.dumps(shown),
        },
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "el inicio debe ser anterior al final" in page
    assert "se esperaba un número entero" in page and "zona horaria desconocida" in page
    assert english_words(page, []) == []


def test_a_wrong_method_is_spanish_in_the_layout(reader: FlaskClient) -> None:
    answer = reader.get("/logout")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 405 and _in_the_layout(page)
    assert "No se puede hacer en esta dirección" in page and english_words(page, []) == []
    assert "POST" in answer.headers["Allow"]


def test_a_refused_csrf_token_is_spanish_in_the_layout(reader: FlaskClient) -> None:
    answer = reader.post("/admin/tokens", data={"name": "la caja"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and _in_the_layout(page)
    assert "El formulario caducó" in page and english_words(page, []) == []


def test_an_unexpected_error_is_spanish_in_the_layout(
    app: Flask, owner: User, session: Session
) -> None:
    def broken() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/roto", "broken", broken)  # before the app's first request
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: a page, not a traceback
    owner.locale = "es"
    session.commit()
    reader = app.test_client()
    assert log_in(reader, *OWNER).status_code == 302
    answer = reader.get("/roto")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 500 and _in_the_layout(page)
    assert "Algo salió mal" in page and "a bug" not in page


def test_machines_keep_their_own_errors(client: FlaskClient) -> None:
    unsigned = client.post("/webhooks/twilio/sms", data={"Body": "hola"})
    assert unsigned.status_code == 403 and unsigned.mimetype == "text/plain"
    missing = client.get("/api/nada")
    assert missing.status_code == 404 and missing.get_json()["errors"][0]["field"] is None


# --- names of the domain's values -------------------------------------------------------------


def test_every_value_of_the_domain_has_a_name() -> None:
    enums = [FollowUpStatus, CaseStatus, SaleStatus, Role, RemedyStatus, RemedyKind, Channel, Theme]
    for enum in enums:
        assert set(NAMES[enum.__name__]) == set(enum), enum.__name__
    assert set(NAMES["Label"]) == {*Label, AT_RISK}  # a case's reason: a label, or at risk
    assert set(MessageStatus) | set(ProviderStatus) <= set(NAMES["MessageStatus"])
    assert set(LANES) == set(Anchor)  # the cadence editor's names for what a step counts from


def test_staff_emails_name_reasons_and_remedies_as_the_admin_does(app: Flask) -> None:
    for locale in ("es", "en"):
        texts = NOTICE_TEXTS[locale]
        with app.test_request_context(headers={"Accept-Language": locale}):
            reasons = {str(label): named(label, "Label") for label in [*Label, AT_RISK]}
            assert texts.reasons == reasons, locale
            assert texts.kinds == {kind.value: named(kind) for kind in RemedyKind}, locale


def test_the_reasons_the_domain_writes_are_translated(app: Flask) -> None:
    rules = SendRules(
        tz=ZoneInfo("America/Lima"),
        window=parse_window("09:00-20:00"),
        days=("mon", "tue", "wed", "thu", "fri", "sat"),
    )
    step = Step(1, "day7", Anchor.SALE, timedelta(days=7), Channel.SMS)
    late = plan_step(step, NOW - timedelta(days=30), rules, NOW, timedelta(hours=48)).reason
    night = NOW + timedelta(hours=12)  # 22:00 in Lima
    due = Situation(NOW, False, None, True, False, None)
    situations = [
        (replace(due, sale_cancelled=True), NOW),
        (replace(due, opted_out="replied 'BAJA' by SMS"), NOW),
        (replace(due, has_address=False), NOW),
        (replace(due, open_case=True), NOW),
        (replace(due, due_at=NOW - timedelta(days=5)), NOW),
        (due, night),
        (replace(due, last_message_at=NOW - timedelta(hours=1)), NOW),
    ]
    gap, grace = timedelta(hours=20), timedelta(hours=48)
    decisions = [decide(s, now=now, rules=rules, grace=grace, min_gap=gap) for s, now in situations]
    reasons = [reason for reason in [late, *(d.reason for d in decisions)] if reason]
    assert len(reasons) == 8
    with app.test_request_context(headers={"Accept-Language": "es"}):
        for reason in reasons:
            assert translated(reason) != reason, reason
            assert english_words(translated(reason), []) == [], reason
        assert translated("attempt 2 failed: 503 Service Unavailable") == (
            "falló el intento 2: 503 Service Unavailable"  # the provider's words stay its own
        )
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert [translated(reason) for reason in reasons] == reasons


def test_an_owner_added_in_spanish_reads_spanish(app: Flask, session: Session) -> None:
    user = add_user(
        session,
        email="duena@example.pe",
        role=Role.OWNER,
        password="owner password 1",
        now=utcnow(),
        actor="test",
    )
    user.locale = "es"
    session.commit()
    client = app.test_client()
    assert log_in(client, "duena@example.pe", "owner password 1").status_code == 302
    assert english_words(client.get("/").get_data(as_text=True), []) == []
