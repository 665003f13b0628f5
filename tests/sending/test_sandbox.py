"""Rendering owner-edited templates: sandboxed, strict, capped, errors that say where."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.lifecycle import Channel
from scheduler.sending.composing import email_layout
from scheduler.sending.sandbox import (
    SMS_MAX_CHARS,
    RenderError,
    TemplateSource,
    render,
    render_part,
)

CONTEXT: dict[str, Any] = {
    "customer": {"name": "Rosa Quispe", "first_name": "Rosa"},
    "product": {"name": "Lavadora"},
    "business": {"name": "Mi Tienda"},
    "locale": "es",
}


def sms(body: str, name: str = "x") -> TemplateSource:
    return TemplateSource(name, Channel.SMS, "es", body)


def email(
    body: str, subject: str = "Hola {{ customer.first_name }}", **parts: Any
) -> TemplateSource:
    return TemplateSource("mail", Channel.EMAIL, "es", body, subject, parts.get("html_body"))


def render_error(template: TemplateSource, context: dict[str, Any] = CONTEXT) -> str:
    with pytest.raises(RenderError) as raised:
        render(template, context, email_layout())
    return str(raised.value)


def test_sms_renders_its_variables_stripped() -> None:
    rendered = render(
        sms("  Hola {{ customer.first_name }}, gracias por {{ product.name }}.\n"),
        CONTEXT,
        email_layout(),
    )
    assert rendered.text == "Hola Rosa, gracias por Lavadora."
    assert rendered.subject is None and rendered.html is None


def test_sms_text_is_not_html_escaped() -> None:
    context = {**CONTEXT, "customer": {"first_name": "Ana & <Bea>"}}
    rendered = render(sms("Hola {{ customer.first_name }}"), context, email_layout())
    assert rendered.text == "Hola Ana & <Bea>"


def test_a_missing_variable_names_template_part_and_line() -> None:
    message = render_error(sms("Hola {{ customer.first_name }},\ntu {{ producto.nombre }}."))
    assert message.startswith("template 'x' (sms/es) body line 2: ")
    assert "producto" in message


def test_a_missing_attribute_is_an_error_too() -> None:
    message = render_error(sms("Hola {{ customer.apellido }}"))
    assert message.startswith("template 'x' (sms/es) body line 1: ")
    assert "apellido" in message


def test_a_syntax_error_reports_its_line() -> None:
    message = render_error(sms("Hola\n{{ customer.first_name }\nchau"))
    assert message.startswith("template 'x' (sms/es) body line 2: ")


def test_an_unclosed_block_is_a_render_error() -> None:
    message = render_error(sms("{% if customer %}Hola"))
    assert message.startswith("template 'x' (sms/es) body line ")


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ customer.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ product.name.__class__ }}",
        "{{ customer.__class__.__subclasses__() }}",
        "{{ '{0.__class__}'.format(product) }}",
    ],
)
def test_the_sandbox_refuses_unsafe_attributes(body: str) -> None:
    message = render_error(sms(body))
    assert message.startswith("template 'x' (sms/es) body line 1: access to attribute '__class__'")
    assert message.endswith("is unsafe.")


def test_sms_longer_than_the_limit_says_its_length() -> None:
    message = render_error(sms("{% for i in range(2000) %}x{% endfor %}"))
    assert message == (
        f"template 'x' (sms/es) body: renders to 2000 characters, more than {SMS_MAX_CHARS}"
    )


def test_sms_exactly_at_the_limit_renders() -> None:
    body = f"{{% for i in range({SMS_MAX_CHARS}) %}}x{{% endfor %}}"
    assert len(render(sms(body), CONTEXT, email_layout()).text) == SMS_MAX_CHARS


@pytest.mark.parametrize("body", ["", "   \n  ", "{% if false %}Hola{% endif %}"])
def test_an_empty_message_is_refused(body: str) -> None:
    message = render_error(sms(body))
    assert message == "template 'x' (sms/es) body: renders to an empty message"


def test_an_arithmetic_error_in_a_template_is_a_render_error() -> None:
    message = render_error(sms("Hola {{ 1/0 }}"))
    assert message.startswith("template 'x' (sms/es) body")
    assert "ZeroDivisionError" in message


def test_render_part_with_a_custom_label() -> None:
    with pytest.raises(RenderError, match=r"^custom line 1: .*nope"):
        render_part("{{ nope }}", {}, escaped=False, label="custom")
    assert render_part(" {{ a }} ", {"a": "<b>"}, escaped=True, label="x") == "&lt;b&gt;"
    assert render_part(" {{ a }} ", {"a": "<b>"}, escaped=False, label="x") == "<b>"


def test_email_subject_is_rendered_and_whitespace_collapsed() -> None:
    template = email("Cuerpo", subject="  Hola\n  {{ customer.first_name }},   gracias  ")
    rendered = render(template, CONTEXT, email_layout())
    assert rendered.subject == "Hola Rosa, gracias"


def test_an_email_without_subject_is_refused() -> None:
    message = render_error(TemplateSource("mail", Channel.EMAIL, "es", "Cuerpo", None))
    assert message == "template 'mail' (email/es) subject: renders to an empty message"


def test_a_subject_error_names_the_subject_part() -> None:
    message = render_error(email("Cuerpo", subject="Hola {{ nadie }}"))
    assert message.startswith("template 'mail' (email/es) subject line 1: ")


def test_email_layout_escapes_variables_while_text_keeps_them() -> None:
    context = {**CONTEXT, "customer": {"first_name": "<script>alert(1)</script>"}}
    template = email("Hola {{ customer.first_name }}.\n\nSegundo párrafo.")
    rendered = render(template, context, email_layout())
    assert rendered.text == "Hola <script>alert(1)</script>.\n\nSegundo párrafo."
    assert rendered.html is not None
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert rendered.html.count("<p ") == 2
    assert "Segundo párrafo.</p>" in rendered.html
    assert '<html lang="es">' in rendered.html


def test_the_layout_title_is_the_escaped_subject() -> None:
    template = email("Cuerpo", subject="Hola {{ customer.first_name }}")
    context = {**CONTEXT, "customer": {"first_name": "A&B"}}
    rendered = render(template, context, email_layout())
    assert rendered.subject == "Hola A&B"
    assert rendered.html is not None and "<title>Hola A&amp;B</title>" in rendered.html


def test_a_template_with_its_own_html_is_autoescaped() -> None:
    template = email(
        "Hola {{ customer.first_name }}",
        html_body="<p>Hola <b>{{ customer.first_name }}</b></p>",
    )
    context = {**CONTEXT, "customer": {"first_name": "<i>Rosa</i>"}}
    rendered = render(template, context, email_layout())
    assert rendered.html == "<p>Hola <b>&lt;i&gt;Rosa&lt;/i&gt;</b></p>"
    assert rendered.text == "Hola <i>Rosa</i>"


def test_an_error_in_the_own_html_names_the_html_part() -> None:
    message = render_error(email("Hola", html_body="<p>\n{{ falta }}</p>"))
    assert message.startswith("template 'mail' (email/es) html line 2: ")


def test_an_error_in_the_layout_names_the_layout() -> None:
    with pytest.raises(RenderError, match=r"^email layout line 1: "):
        render(email("Hola"), CONTEXT, "{{ missing }}")
