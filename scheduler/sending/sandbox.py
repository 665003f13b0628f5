"""Rendering owner-editable templates safely: Jinja2 sandbox, strict variables, capped output.

Owners edit these templates, so they run in `SandboxedEnvironment`; a misspelt variable is an
error (`StrictUndefined`) rather than a blank in a customer's message. HTML email is autoescaped,
text is not. Compiling costs far more than rendering, so compiled templates are cached by source.
"""

from __future__ import annotations

import builtins
import ctypes
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
from types import TracebackType
from typing import TYPE_CHECKING, Any

from scheduler.lifecycle import Channel

if TYPE_CHECKING:  # Jinja is loaded by the first render: a pass with nothing due renders none
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

SMS_MAX_CHARS = 1600  # Twilio refuses longer bodies
WHATSAPP_MAX_CHARS = 1024  # WhatsApp rejects a longer one (Twilio's 63021): refused before
EMAIL_MAX_CHARS = 100_000  # the sandbox bounds what a template may touch, not how much it prints

RENDER_SECONDS = 2.0  # an owner's template that takes longer fails, and blocks nothing else
PART_MAX_CHARS = 200_000  # what one part may print before it is stopped (limits checked after)
MAX_REPEAT = 10_000  # the longest string or list `*` may make, and the largest `**` exponent


class RenderError(ValueError):
    """A template that cannot produce a message; says which template, which part and line."""


class _TooSlow(Exception):
    """Raised inside a render that ran past RENDER_SECONDS (by `_Watchdog`)."""


class _Watchdog:
    """Stops a render in its thread when its time is up: the sandbox bounds what a template may
    touch, not how long it loops, and the worker must go on (and stop on SIGTERM).

    One daemon thread watches every render of the process: a render only writes its deadline
    down, so a pass of thousands of messages does not start a timer thread for each."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._deadlines: dict[int, float] = {}  # rendering thread -> when its time is up
        self._fired: set[int] = set()
        self._waking_at: float | None = None  # the watcher's next look; None: asleep for good
        self._watcher: threading.Thread | None = None

    @contextmanager
    def watching(self, seconds: float) -> Iterator[None]:
        me, deadline = threading.get_ident(), time.monotonic() + seconds
        with self._changed:
            if self._watcher is None or not self._watcher.is_alive():  # first use, or forked
                self._watcher = threading.Thread(target=self._watch, name="render-watchdog")
                self._watcher.daemon = True
                self._watcher.start()
            self._deadlines[me] = deadline
            self._fired.discard(me)  # an earlier render's, raised as it was leaving
            if self._waking_at is None or deadline < self._waking_at:
                self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                del self._deadlines[me]
                if me in self._fired:  # fired but not yet raised here: withdraw it
                    self._fired.discard(me)
                    _set_async_exc(me, None)

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for thread, deadline in self._deadlines.items():
                    if deadline <= now and thread not in self._fired:
                        self._fired.add(thread)
                        _set_async_exc(thread, _TooSlow)
                waiting = [d for t, d in self._deadlines.items() if t not in self._fired]
                self._waking_at = min(waiting, default=None)
                self._changed.wait(None if self._waking_at is None else self._waking_at - now)


_WATCHDOG = _Watchdog()


def _set_async_exc(thread: int, error: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread), ctypes.py_object(error) if error else None
    )


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    """Jinja's `lipsum`, its names kept, at most 20 paragraphs of at most 100 words."""
    from jinja2.utils import generate_lorem_ipsum

    cap = builtins.min
    return generate_lorem_ipsum(n=cap(n, 20), html=html, min=cap(min, 100), max=cap(max, 100))


@cache
def _environments() -> Mapping[bool, SandboxedEnvironment]:
    """The sandboxes for text and for HTML (autoescaped), made by the first render."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    class BoundedSandbox(SandboxedEnvironment):
        """The sandbox, with `*` and `**` unable to build a huge value in one C call (where no
        watchdog can stop them) and `lipsum` unable to print a book."""

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, int) and abs(right) > MAX_REPEAT:
                raise RenderError(f"an exponent above {MAX_REPEAT}")
            if operator == "*" and isinstance(left, str | list | tuple) and isinstance(right, int):
                left, right = right, left
            if operator == "*" and isinstance(right, str | list | tuple) and isinstance(left, int):
                if left * len(right) > PART_MAX_CHARS:
                    raise RenderError(f"repeats something to more than {PART_MAX_CHARS} items")
            return super().call_binop(context, operator, left, right)

    environments = {
        escaped: BoundedSandbox(undefined=StrictUndefined, autoescape=escaped)
        for escaped in (False, True)
    }
    for environment in environments.values():
        environment.globals["lipsum"] = _lipsum
    return environments


def load_sandboxes() -> None:
    """Build the sandboxes now, ahead of the first render."""
    _environments()


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
    return _environments()[escaped].from_string(source)


def _template_line(traceback: TracebackType | None) -> int | None:
    """The template line an error was raised at: Jinja rewrites frames to `<template>` lines."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def _stream(template: Template, context: Mapping[str, Any]) -> str:
    """The output, stopped once it passes PART_MAX_CHARS or RENDER_SECONDS."""
    chunks, size = [], 0
    with _WATCHDOG.watching(RENDER_SECONDS):
        for chunk in template.generate(context):
            size += len(chunk)
            if size > PART_MAX_CHARS:
                raise RenderError(f"prints more than {PART_MAX_CHARS} characters")
            chunks.append(chunk)
    return "".join(chunks)


def render_part(source: str, context: Mapping[str, Any], *, escaped: bool, label: str) -> str:
    """Render one part; every Jinja failure becomes a RenderError naming the part and line, and
    so does a render that runs too long or prints too much."""
    from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError

    try:
        return _stream(_compile(source, escaped), context).strip()
    except _TooSlow:
        raise RenderError(f"{label}: takes more than {RENDER_SECONDS:g} s to render") from None
    except RenderError as error:
        raise RenderError(f"{label}: {error}") from None
    except TemplateSyntaxError as error:
        raise RenderError(f"{label} line {error.lineno}: {error.message}") from None
    except TemplateError as error:
        line = _template_line(sys.exc_info()[2])
        where = f" line {line}" if line else ""
        known = (
            f" (it can use {', '.join(variables(context))})"
            if isinstance(error, UndefinedError)
            else ""
        )
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
    if template.channel is not Channel.EMAIL:
        text = render_part(template.body, context, escaped=False, label=template.label("body"))
        limit = WHATSAPP_MAX_CHARS if template.channel is Channel.WHATSAPP else SMS_MAX_CHARS
        return Rendered(_check_length(text, limit, template.label("body")))
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
