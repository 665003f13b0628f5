"""Owners editing templates: preview on sample data, SMS size, errors at the line, reset."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import defaults
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Channel
from scheduler.models import AuditEntry, MessageTemplate
from scheduler.sending.sandbox import TemplateSource
from scheduler.sending.template_editing import preview
from tests.browsing import csrf_token, fresh, submit
from tests.factories import NOW


def sms(body: str, locale: str = "es") -> TemplateSource:
    return TemplateSource("thanks", Channel.SMS, locale, body)


def test_preview_renders_sample_data_and_counts_segments() -> None:
    result = preview(
        sms("Hola {{ customer.first_name }}, gracias por tu {{ product.name }}."), defaults(), NOW
    )
    assert result.rendered and result.rendered.text == (
        "Hola Rosa, gracias por tu Lavadora EcoWash 9 kg."
    )
    assert result.size and (result.size.segments, result.size.encoding) == (1, "GSM-7")


def test_preview_says_which_characters_double_the_price() -> None:
    result = preview(sms("¿Cómo te fue? " * 6), defaults(), NOW)
    assert result.size and result.size.encoding == "UCS-2" and result.size.unsupported == "ó"
    assert result.size.segments == 2


def test_preview_shows_the_whatsapp_form_numbered_as_the_content_template() -> None:
    config = defaults().replace(
        whatsapp={"transport": "outbox", "content_sids": {"thanks/es": "HX" + "1" * 32}}
    )
    body = "Hola {{ customer.first_name }}, ¿{{ product.name }}? Chau {{ customer.first_name }}"
    result = preview(sms(body), config, NOW)
    assert result.whatsapp is not None
    assert result.whatsapp.form.text == "Hola {{1}}, ¿{{2}}? Chau {{1}}"
    assert result.whatsapp.form.expressions == ("customer.first_name", "product.name")
    assert result.whatsapp.fits and result.whatsapp.content_sid == "HX" + "1" * 32
    long = preview(sms("{{ customer.first_name }} " + "x" * 1030), defaults(), NOW)
    assert long.whatsapp and not long.whatsapp.fits and long.whatsapp.length == 1035
    assert long.whatsapp.content_sid is None


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("Hola\n{{ customer.nmae }}", 2, "has no attribute 'nmae' (it can use "),
        ("{{ nombre }}", 1, "'nombre' is undefined (it can use business.name, "),
        ("Hola\n\n{% if score %}bien", 3, "Unexpected end of template"),
        ("{{ ''.__class__ }}", 1, "unsafe"),
    ],
)
def test_errors_are_shown_at_their_line(body: str, line: int, words: str) -> None:
    result = preview(sms(body), defaults(), NOW)
    assert result.rendered is None and result.line == line
    assert result.error and words in result.error


@pytest.fixture
def thanks(session: Session) -> MessageTemplate:
    install_defaults(session, NOW)
    session.commit()
    return session.scalars(
        select(MessageTemplate).where(
            MessageTemplate.name == "thanks",
            MessageTemplate.channel == Channel.SMS,
            MessageTemplate.locale == "es",
        )
    ).one()


def _fresh(session: Session, row: MessageTemplate) -> MessageTemplate:
    fresh(session)
    return session.get_one(MessageTemplate, row.id)


def test_the_editor_shows_a_preview_and_the_variables(
    owner_client: FlaskClient, thanks: MessageTemplate
) -> None:
    page = owner_client.get(f"/admin/templates/{thanks.id}").get_data(as_text=True)
    assert "Rosa" in page and "SMS segment(s), GSM-7" in page
    assert "{{ customer.first_name }}" in page and "Reset to default" in page
    assert (
        "WhatsApp form" in page and "<code>{{1}}</code> = <code>customer.first_name</code>" in page
    )
    assert "No Content template mapped" in page
    listing = owner_client.get("/admin/templates").get_data(as_text=True)
    assert f"/admin/templates/{thanks.id}" in listing


def test_a_broken_edit_is_not_saved(
    owner_client: FlaskClient, thanks: MessageTemplate, session: Session
) -> None:
    original = thanks.body
    answer = submit(
        owner_client,
        f"/admin/templates/{thanks.id}",
        {"action": "save", "body": "Hola\n{{ cliente.nombre }}"},
        page=f"/admin/templates/{thanks.id}",
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "line 2" in page and "cliente" in page
    assert "{{ cliente.nombre }}</textarea>" in page  # the draft is kept for fixing
    assert _fresh(session, thanks).body == original


def test_a_good_edit_is_saved_audited_and_can_be_reset(
    owner_client: FlaskClient, thanks: MessageTemplate, session: Session
) -> None:
    original = thanks.body
    page = f"/admin/templates/{thanks.id}"
    answer = submit(
        owner_client,
        page,
        {"action": "save", "body": "Gracias {{ customer.first_name }} <3"},
        page=page,
    )
    assert answer.status_code == 302
    assert _fresh(session, thanks).body == "Gracias {{ customer.first_name }} <3"
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "template.edit")).one()
    assert entry.details["before"] == original
    assert "edited" in owner_client.get("/admin/templates").get_data(as_text=True)
    submit(owner_client, page, {"action": "reset"}, page=page)
    assert _fresh(session, thanks).body == original


def test_live_preview_answers_json_with_the_csrf_header(
    owner_client: FlaskClient, thanks: MessageTemplate
) -> None:
    url = f"/admin/templates/{thanks.id}/preview"
    token = csrf_token(owner_client, f"/admin/templates/{thanks.id}")
    answer = owner_client.post(
        url,
        data={"body": "Hola {{ customer.first_name }} ¿qué tal?"},
        headers={"X-CSRFToken": token},
    )
    assert answer.get_json() == {
        "error": None,
        "line": None,
        "text": "Hola Rosa ¿qué tal?",
        "subject": None,
        "segments": 1,
        "encoding": "GSM-7",
        "unsupported": "",
    }
    assert owner_client.post(url, data={"body": "x"}).status_code == 400  # no token


def test_staff_cannot_edit_templates(staff_client: FlaskClient, thanks: MessageTemplate) -> None:
    assert staff_client.get(f"/admin/templates/{thanks.id}").status_code == 403


def test_every_shipped_template_renders_the_way_it_is_sent(
    session: Session, thanks: MessageTemplate
) -> None:
    from scheduler.sending.template_editing import check_usages

    rows = session.scalars(select(MessageTemplate)).all()
    assert len(rows) > 40
    for row in rows:
        source = TemplateSource(row.name, row.channel, row.locale, row.body, row.subject)
        assert check_usages(session, source, defaults(), NOW) is None, row.name


def test_a_variable_a_step_never_gets_is_refused(
    owner_client: FlaskClient, thanks: MessageTemplate, session: Session
) -> None:
    page = f"/admin/templates/{thanks.id}"
    answer = submit(
        owner_client, page, {"action": "save", "body": "Gracias, tu nota: {{ score }}"}, page=page
    )
    text = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "when sent as a step after the sale" in text and "score" in text
    assert _fresh(session, thanks).body != "Gracias, tu nota: {{ score }}"
