"""Rendering owner-editable templates safely: Jinja2 sandbox, strict variables, capped output.

Owners edit these templates, so they run in `SandboxedEnvironment`; a misspelt variable is an
error (`StrictUndefined`) rather than a blank in a customer's message. HTML email is autoescaped,
text is not. Compiling costs far more than rendering, so compiled templates are cached by source.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from scheduler.lifecycle import Channel

SMS_MAX_CHARS = 1600  # Twilio refuses longer bodies
EMAIL_MAX_CHARS = 100_000  # the sandbox bounds what a template may touch, not how much it prints

_ENVIRONMENTS = {
    escaped: SandboxedEnvironment(undefined=StrictUndefined, autoescape=escaped)
    for escaped in (False, True)
}


class RenderError(ValueError):
    """A template that cannot produce a message; says which template, which part and line."""


@dataclass(frozen=True)
class TemplateSource:
    """The editable parts of one template (a `MessageTemplate` row, or the admin's draft)."""

    name: str
    channel: Channel
    locale: str
    body: str
    subject: str | None = None
    html_body: str | None = None

    def label(self, part: str) -> str:
        return f"template {self.name!r} ({self.channel}/{self.locale}) {part}"


@dataclass(frozen=True)
class Rendered:
    text: str  # the SMS, or the plain-text part of an email
    subject: str | None = None
    html: str | None = None


@lru_cache(maxsize=1024)
def _compile(source: str, escaped: bool) -> Template:
    return _ENVIRONMENTS[escaped].from_string(source)


def _template_line(traceback: TracebackType | None) -> int | None:
    """The template line an error was raised at: Jinja rewrites frames to `<template>` lines."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def render_part(source: str, context: Mapping[str, Any], *, escaped: bool, label: str) -> str:
    """Render one part; every Jinja failure becomes a RenderError naming the part and line."""
    try:
        return _compile(source, escaped).render(context).strip()
    except TemplateSyntaxError as error:
        raise RenderError(f"{label} line {error.lineno}: {error.message}") from None
    except TemplateError as error:
        line = _template_line(sys.exc_info()[2])
        where = f" line {line}" if line else ""
        known = f" (it can use {', '.join(variables(context))})" if isinstance(
            error, UndefinedError) else ""  # fmt: skip
        raise RenderError(f"{label}{where}: {error}{known}") from None
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as error:
        raise RenderError(f"{label}: {type(error).__name__}: {error}") from None


def variables(context: Mapping[str, Any]) -> list[str]:
    """The names a template may use, as written in it: `customer.name`, `renewal_date`. A
    misspelt one is answered with these, since Jinja only says "'dict object' has no
    attribute 'nombre'"."""
    names = []
    for key, value in context.items():
        if isinstance(value, Mapping):
            names += [f"{key}.{inner}" for inner in value]
        else:
            names.append(key)
    return sorted(names)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but tab and newlines


def _check_length(text: str, limit: int, label: str) -> str:
    """Length, emptiness, and control characters (a NUL cannot even be stored in PostgreSQL)."""
    if control := _CONTROL.search(text):
        raise RenderError(f"{label}: renders a control character {control.group()!r}")
    if len(text) > limit:
        raise RenderError(f"{label}: renders to {len(text)} characters, more than {limit}")
    if not text:
        raise RenderError(f"{label}: renders to an empty message")
    return text


def render(template: TemplateSource, context: Mapping[str, Any], layout: str) -> Rendered:
    """The message `template` makes with `context`.

    Email gets an HTML part: the template's own HTML if it has one, else `layout` around the text
    paragraphs (escaped, so a customer's name cannot inject markup).
    """
    if template.channel is Channel.SMS:
        text = render_part(template.body, context, escaped=False, label=template.label("body"))
        return Rendered(_check_length(text, SMS_MAX_CHARS, template.label("body")))
    subject = render_part(
        template.subject or "", context, escaped=False, label=template.label("subject")
    )
    subject = " ".join(_check_length(subject, 998, template.label("subject")).split())
    text = render_part(template.body, context, escaped=False, label=template.label("body"))
    _check_length(text, EMAIL_MAX_CHARS, template.label("body"))
    if template.html_body:
        html = render_part(template.html_body, context, escaped=True, label=template.label("html"))
    else:
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        layout_context = {**context, "subject": subject, "paragraphs": paragraphs}
        html = render_part(layout, layout_context, escaped=True, label="email layout")
    return Rendered(text, subject, _check_length(html, EMAIL_MAX_CHARS, template.label("html")))
