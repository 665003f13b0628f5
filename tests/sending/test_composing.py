"""From a follow-up to its message: the template in the customer's language, the variables."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from scheduler.config import LOCALES, Config
from scheduler.lifecycle import Channel
from scheduler.models import Customer, MessageTemplate, Product, Sale
from scheduler.sending import sandbox
from scheduler.sending.composing import (
    NO_PRODUCT,
    TemplateBook,
    compose,
    load_composer,
    template_context,
)
from scheduler.sending.sandbox import RenderError
from scheduler.sending.segments import GSM7
from tests.dispatching import follow_up, setup_sales
from tests.factories import NOW, sale_input


def _sale(session: Session, external_id: str = "S-1") -> Sale:
    return session.scalars(select(Sale).where(Sale.external_id == external_id)).one()


def _template(session: Session, name: str, channel: Channel, locale: str) -> MessageTemplate:
    return session.scalars(
        select(MessageTemplate).where(
            MessageTemplate.name == name,
            MessageTemplate.channel == channel,
            MessageTemplate.locale == locale,
        )
    ).one()


def test_a_spanish_customer_gets_the_spanish_thanks(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        composed = compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert composed.rendered.text == (
        "Hola Rosa, gracias por comprar Lavadora en Mi Tienda. Si tienes dudas o algo no va bien, "
        "responde a este mensaje: lo lee una persona de nuestro equipo."
    )
    assert composed.size is not None
    assert (
        composed.size.encoding == GSM7
        and composed.size.units == 151
        and composed.size.segments == 1
    )


def test_an_english_customer_gets_the_english_template(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input(locale="en"))
    with sessions() as session:
        composed = compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert composed.rendered.text.startswith(
        "Hi Rosa, thank you for buying Lavadora from Mi Tienda."
    )


def test_an_unknown_locale_falls_back_to_the_business_locale(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        session.scalars(select(Customer)).one().locale = "fr"
        composed = compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert composed.rendered.text.startswith("Hola Rosa, gracias por comprar Lavadora")


def test_an_english_business_falls_back_to_english(engine: Engine, config: Config) -> None:
    config = config.replace(business={"locale": "en"})
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        session.scalars(select(Customer)).one().locale = "pt"
        composed = compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert composed.rendered.text.startswith("Hi Rosa,")


def test_find_template_prefers_the_customer_locale(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config)
    with sessions() as session:
        found = TemplateBook.load(session).find("thanks", Channel.SMS, "en", "es")
        assert found is not None and found.locale == "en"
        found = TemplateBook.load(session).find("thanks", Channel.SMS, "de", "es")
        assert found is not None and found.locale == "es"
        found = TemplateBook.load(session).find("thanks", Channel.EMAIL, "en", "es")
        assert found is not None and found.channel is Channel.EMAIL and found.subject
        assert TemplateBook.load(session).find("nope", Channel.SMS, "en", "es") is None


def test_a_sale_without_product_says_tu_compra(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input(product_sku=None, product_name=None))
    with sessions() as session:
        composed = compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
        assert composed.rendered.text.startswith("Hola Rosa, gracias por comprar tu compra en")
        context = template_context(
            sale=_sale(session), config=config, locale="en", channel=Channel.SMS, facts={}
        )
    assert context["product"] == {"name": NO_PRODUCT["en"], "sku": ""}
    assert context["product"]["name"] == "your purchase"


def test_the_context_holds_plain_values(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        context = template_context(
            sale=_sale(session), config=config, locale="es", channel=Channel.SMS, facts={}
        )
    assert context["locale"] == "es"
    assert context["customer"] == {"name": "Rosa Quispe", "first_name": "Rosa"}
    assert context["product"] == {"name": "Lavadora", "sku": "LAV-9"}
    assert context["sale"] == {
        "external_id": "S-1",
        "sold_on": "23 de noviembre de 2026",
        "amount": "1899.00",
        "currency": "PEN",
    }
    assert context["business"] == {"name": "Mi Tienda", "review_url": ""}
    assert context["reply"] == {"instructions": "Responde a este SMS: lo lee una persona."}
    assert "renewal_date" not in context


@pytest.mark.parametrize(
    ("channel", "locale", "instructions"),
    [
        (Channel.SMS, "en", "Reply to this text: a person reads it."),
        (Channel.EMAIL, "es", "Responde a este correo: lo lee una persona."),
        (Channel.EMAIL, "en", "Reply to this email: a person reads it."),
    ],
)
def test_reply_instructions_follow_channel_and_locale(
    engine: Engine, config: Config, channel: Channel, locale: str, instructions: str
) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions() as session:
        context = template_context(
            sale=_sale(session), config=config, locale=locale, channel=channel, facts={}
        )
    assert context["reply"]["instructions"] == instructions
    if locale == "en":
        assert context["sale"]["sold_on"] == "November 23, 2026"


def test_renewal_date_only_for_renewing_products(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions.begin() as session:
        session.scalars(select(Product)).one().renewal_days = 365
    with sessions() as session:
        context = template_context(
            sale=_sale(session), config=config, locale="es", channel=Channel.SMS, facts={}
        )
        assert context["renewal_date"] == "23 de noviembre de 2027"
        session.scalars(select(Product)).one().renewal_days = 0
        context = template_context(
            sale=_sale(session), config=config, locale="es", channel=Channel.SMS, facts={}
        )
        assert "renewal_date" not in context


def test_the_renewal_template_renders_the_date(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions.begin() as session:
        session.scalars(select(Product)).one().renewal_days = 30
        row = follow_up(session, "day1-thanks")
        row.step.template_name = "renewal_reminder"
    with sessions() as session:
        composed = compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert composed.rendered.text.startswith(
        "Hola Rosa, tu Lavadora vence el 23 de diciembre de 2026."
    )


def test_facts_reach_the_template(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions.begin() as session:
        row = follow_up(session, "day1-thanks")
        row.facts = {"score": 9}
        row.step.template_name = "review_request"
    with sessions() as session:
        composed = compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert composed.rendered.text == "¡Gracias por tu 9, Rosa! Nos alegra mucho leerlo."


def test_the_review_url_is_offered_when_configured(engine: Engine, config: Config) -> None:
    config = config.replace(business={"review_url": "https://example.com/review"})
    sessions = setup_sales(engine, config, sale_input())
    with sessions.begin() as session:
        row = follow_up(session, "day1-thanks")
        row.facts = {"score": 10}
        row.step.template_name = "review_request"
    with sessions() as session:
        composed = compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert composed.rendered.text.startswith("¡Gracias por tu 10, Rosa! Si te animas")
    assert composed.rendered.text.endswith("https://example.com/review")


def test_a_template_without_its_fact_is_a_render_error(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions.begin() as session:
        follow_up(session, "day1-thanks").step.template_name = "review_request"
    with sessions() as session, pytest.raises(RenderError) as raised:
        compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert str(raised.value).startswith("template 'review_request' (sms/es) body line 1: ")
    assert "score" in str(raised.value)


def test_a_missing_template_says_which(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input(locale="en"))
    with sessions.begin() as session:
        session.execute(delete(MessageTemplate).where(MessageTemplate.name == "thanks"))
    with sessions() as session, pytest.raises(RenderError) as raised:
        compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert str(raised.value) == "no sms template 'thanks' in 'en' or 'es'"


def test_an_email_follow_up_has_subject_html_and_no_sms_size(
    engine: Engine, config: Config
) -> None:
    sessions = setup_sales(engine, config, sale_input(phone=None, email="rosa@example.com"))
    with sessions() as session:
        row = follow_up(session, "day90-usage")
        assert row.channel is Channel.EMAIL
        composed = compose(row, config, TemplateBook.load(session))
    assert composed.size is None
    assert composed.rendered.subject == "¿Sigue todo bien con Lavadora?"
    assert composed.rendered.text.startswith("Hola Rosa:\n\nYa van tres meses con Lavadora.")
    assert composed.rendered.html is not None
    assert "<title>¿Sigue todo bien con Lavadora?</title>" in composed.rendered.html


def test_an_edited_template_is_used(engine: Engine, config: Config) -> None:
    sessions = setup_sales(engine, config, sale_input())
    with sessions.begin() as session:
        row = _template(session, "thanks", Channel.SMS, "es")
        row.body = "{{ sale.sold_on }} · {{ reply.instructions }}"
    with sessions() as session:
        composed = compose(follow_up(session, "day1-thanks"), config, TemplateBook.load(session))
    assert composed.rendered.text == (
        "23 de noviembre de 2026 · Responde a este SMS: lo lee una persona."
    )
    assert composed.size is not None and composed.size.unsupported == "·"


def test_sold_on_is_the_business_local_date(engine: Engine, config: Config) -> None:
    late = NOW.replace(hour=2) + timedelta(days=1)  # 02:00 UTC on the 24th: 21:00 on the 23rd
    sessions = setup_sales(engine, config, sale_input(sold_at=late), now=late)
    with sessions() as session:
        context = template_context(
            sale=_sale(session), config=config, locale="es", channel=Channel.SMS, facts={}
        )
    assert context["sale"]["sold_on"] == "23 de noviembre de 2026"


def test_renewal_date_counts_from_the_local_sale_date(engine: Engine, config: Config) -> None:
    late = NOW.replace(hour=2) + timedelta(days=1)  # 23 Nov 2026, 21:00 in Lima
    sessions = setup_sales(engine, config, sale_input(sold_at=late), now=late)
    with sessions.begin() as session:
        session.scalars(select(Product)).one().renewal_days = 365
    with sessions() as session:
        context = template_context(
            sale=_sale(session), config=config, locale="es", channel=Channel.SMS, facts={}
        )
    assert context["sale"]["sold_on"] == "23 de noviembre de 2026"
    assert context["renewal_date"] == "23 de noviembre de 2027"


def test_what_composing_needs_is_loaded_ahead_of_a_render() -> None:
    """A worker loads it before it freezes what it holds (`Worker.run_forever`)."""
    from babel import localedata

    sandbox._environments.cache_clear()
    load_composer()
    assert sandbox._environments.cache_info().currsize == 1
    assert set(LOCALES) <= set(localedata._cache)
