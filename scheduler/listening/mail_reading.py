"""Customers' email replies read from their raw bytes: who wrote, to which of our messages, and
what they wrote themselves, without the quoted history or the signature.

A mail is written by a stranger's software, so nothing in it is trusted: `read_mail` never
raises, and a malformed message gives whatever can be read. Every string is one PostgreSQL can
store (no NUL, no half of a UTF-16 pair) and has a bound.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import TypeVar

from mailparser_reply import EmailMessage as ReplyParser  # type: ignore[import-untyped]

from scheduler.addresses import normalise_email
from scheduler.listening.keywords import fold

TEXT_LIMIT = 20_000  # characters of what the customer wrote that are kept
HEADER_LIMIT = 998  # RFC 5322's longest line: no honest header value is longer
HTML_LIMIT = 500_000  # characters of an HTML body turned into text; the rest is history
LONG_LINE = 300  # no quote header or signature line is longer
MOST_REFERENCES = 100
MOST_ATTACHMENTS = 50
NO_IDS: tuple[str, ...] = ()
REPLY_LANGUAGES = ("es", "en")

# RFC 3834 `Auto-Submitted`, and what vacation responders and list servers put instead.
AUTOMATIC_PRECEDENCE = frozenset({"bulk", "auto_reply", "junk", "list"})
AUTOMATIC_FLAGS = ("x-autoreply", "x-autorespond")
# What out-of-office replies put first in their subject, folded (see keywords.fold).
AUTOMATIC_SUBJECT = re.compile(
    r"^(?:respuesta automatica|autorespuesta|fuera de (?:la )?oficina"
    r"|automatic reply|auto ?-?reply|autoreply|auto ?-?response|out of (?:the )?office)\b"
)
BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})
BOUNCE_SUBJECT = re.compile(
    r"^(?:undelivered mail|undeliverable|delivery status notification \(failure\)"
    r"|mail delivery (?:failed|failure)|returned mail|no se pudo entregar|mensaje no entregado)"
)
STATUS_CODE = re.compile(r"\b[45]\.\d{1,3}\.\d{1,3}\b")  # RFC 3463 enhanced status code
MESSAGE_ID = re.compile(r"<[^<>\s]{1,900}>")

# Text a database cannot store (NUL, other C0/C1 controls, lone surrogates). In a body, tabs
# and line breaks stay; in a header, they become spaces.
UNSTORABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
SURROGATE = re.compile(r"[\ud800-\udfff]")

# Gmail's and Apple Mail's Spanish quote header, possibly wrapped onto a second line
# ("El vie, 27 nov 2026 a las 10:00, Mi Tienda (<\nhola@mitienda.pe>) escribió:").
# mail-parser-reply 1.36 wants two spaces before "escribió" and so never finds it.
SPANISH_QUOTE_HEADER = re.compile(
    r"^(?:>[ >]*)?El\s[^\n]{1,300}(?:\n[^\n]{1,300})?\sescribió:$", re.MULTILINE
)
# A zero-width space ahead of a long line keeps the reply parser's line-start patterns off it:
# they are quadratic in a line's length (a 20 000-character line beginning "On " took 6 s).
GUARD = "\u200b"
SIGN_OFF = re.compile(r"[^,]{0,60},?")  # "Saludos,", "Sent from my iPhone": nothing after a comma


@dataclass(frozen=True)
class Bounce:
    """A delivery failure report: the address that failed (None when the report names none),
    the RFC 3463 status ("5.1.1"), and the receiving server's words."""

    recipient: str | None
    status: str
    diagnostic: str


@dataclass(frozen=True)
class IncomingMail:
    """One email as Postventa reads it. `message_id` is generated from the bytes when missing,
    so the same mail read twice is the same mail. `automatic` is true for out-of-office
    replies, list mail and bounces: no person wrote it."""

    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    sender: str
    sender_name: str
    subject: str
    text: str
    automatic: bool
    bounce: Bounce | None
    attachments: tuple[str, ...]


def read_mail(raw: bytes) -> IncomingMail:
    """What a raw RFC 5322 message says; never raises, whatever the bytes."""
    message = _parse(raw)
    sender_name, sender = _or(("", ""), lambda: _sender(message))
    subject = _or("", lambda: _header(message, "subject"))
    body = _or("", lambda: _body_text(message))
    bounce = _or(None, lambda: _bounce(message, sender, subject, body))
    message_id = _or("", lambda: _one_line(_raw_header(message, "message-id")))
    return IncomingMail(
        message_id=message_id or f"<{hashlib.sha256(raw).hexdigest()}@postventa.invalid>",
        in_reply_to=_or(None, lambda: next(iter(_ids(message, "in-reply-to")), None)),
        references=_or(NO_IDS, lambda: _references(message)),
        sender=sender,
        sender_name=sender_name,
        subject=subject,
        text=_or("", lambda: _reply_text(body)),
        automatic=bounce is not None or _or(False, lambda: _automatic(message, subject)),
        bounce=bounce,
        attachments=_or(NO_IDS, lambda: _attachments(message)),
    )


T = TypeVar("T")


def _or(default: T, read: Callable[[], T]) -> T:
    """`read()`, or `default` when the standard library trips on hostile input: its header and
    MIME parsers have raised IndexError, AttributeError, RecursionError... on crafted mail, and
    one unreadable part must not cost the rest of the message."""
    try:
        return read()
    except Exception:
        return default


def _parse(raw: bytes) -> EmailMessage:
    """The message tree; else its headers alone (thousands of nested multiparts exceed Python's
    recursion limit); else nothing."""
    parser = BytesParser(EmailMessage, policy=policy.default)
    for headers_only in (False, True):
        try:
            return parser.parsebytes(raw, headersonly=headers_only)
        except Exception:
            continue
    return EmailMessage(policy=policy.default)


def _raw_header(message: Message, name: str) -> str:
    """The first `name` header as sent, unfolded and not decoded ("" when absent)."""
    for key, value in message.raw_items():
        if key.lower() == name:
            return re.sub(r"\r?\n(?=[ \t])", "", str(value))
    return ""


def _header(message: EmailMessage, name: str) -> str:
    """A header decoded to one storable line: RFC 2047 words, or 8-bit bytes sent raw."""
    value = _raw_header(message, name)
    if SURROGATE.search(value):  # raw 8-bit bytes, which the header parser turns into U+FFFD
        return _one_line(_decode(value.encode("utf-8", "surrogateescape"), None))
    header = _or(None, lambda: message.get(name))
    return _one_line(str(header) if header is not None else value)


def _one_line(text: str) -> str:
    return " ".join(CONTROL.sub(" ", text).split())[:HEADER_LIMIT]


def _ids(message: Message, name: str) -> tuple[str, ...]:
    """The <message ids> a header names, leaving out comments and whatever else is there."""
    return tuple(MESSAGE_ID.findall(_raw_header(message, name)))


def _references(message: Message) -> tuple[str, ...]:
    """References, at most MOST_REFERENCES: the first is the thread's root and the last the
    nearest, and those are the ones that name our message."""
    ids = _ids(message, "references")
    return ids if len(ids) <= MOST_REFERENCES else ids[:1] + ids[1 - MOST_REFERENCES :]


def _sender(message: EmailMessage) -> tuple[str, str]:
    """(display name, address in lower case) of From; the address as our customers' are stored."""
    addresses = getaddresses([_header(message, "from")])
    name, address = addresses[0] if addresses else ("", "")
    return _one_line(name), _address(address)


def _address(raw: str) -> str:
    """An address spelled as our customers' are stored, or at least in lower case."""
    try:
        return _one_line(normalise_email(raw))
    except ValueError:
        return _one_line(raw).lower()


def _decode(data: bytes, charset: str | None) -> str:
    """Bytes as text whatever their declaration says: a charset Python does not know, or one
    the bytes do not follow, falls back to UTF-8, then to Windows-1252 (Latin-1 as Spanish
    mail is usually written), never to an error."""
    try:
        return data.decode(charset or "us-ascii")
    except (LookupError, ValueError):
        pass
    try:
        return data.decode("utf-8")
    except ValueError:
        return data.decode("cp1252", errors="replace")


def _body_text(message: EmailMessage) -> str:
    """The text of the plain body, else of the HTML one ("" when there is neither).

    Decoded here rather than by `get_content()`, which raises LookupError on an unknown charset
    and fills in U+FFFD for bytes that do not follow the declared one."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    text = _decode(data, part.get_content_charset())
    if part.get_content_subtype() == "html":
        return _html_text(text[:HTML_LIMIT])
    return text


def _reply_text(body: str) -> str:
    """What the customer wrote: the body less the quoted history and the signature
    (mail-parser-reply, in Spanish and English), in storable text of at most TEXT_LIMIT."""
    body = UNSTORABLE.sub("", body.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.strip() for line in body.split("\n")]
    text = "\n".join(GUARD + line if len(line) > LONG_LINE else line for line in lines)
    text = re.sub(r"\n{3,}", "\n\n", text)[:TEXT_LIMIT]  # runs of blank lines: quadratic too
    text = SPANISH_QUOTE_HEADER.split(text, maxsplit=1)[0]
    reply = ReplyParser(text=text, languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True)
    latest = reply.read().replies[0]
    # The parser cuts from a line that opens with a closing ("Gracias,") to the end. A
    # customer who goes on after the comma ("Gracias, pero llegó roto") is still talking:
    # then only the quoted history goes.
    signature = str(latest.signatures).split("\n", 1)[0]
    kept = str(latest.body if SIGN_OFF.fullmatch(signature) else latest.full_body)
    lines = kept.replace(GUARD, "").split("\n")
    while lines and (not lines[-1] or lines[-1].startswith(">")):  # a quote with no header
        lines.pop()
    return "\n".join(lines)


class _HtmlText(HTMLParser):
    """The text a person sees in an HTML body, a line per block; scripts, styles and the
    quoted history (blockquote) are left out."""

    HIDDEN = frozenset({"script", "style", "head", "title", "template", "blockquote"})
    LINES = frozenset({"div", "li", "tr", "table", "ul", "ol", "hr", "pre", "dl", "dt", "dd"})
    PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0
        self.breaks = 0  # line breaks owed before the next text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self.breaks += 1
        elif tag in ("td", "th"):
            self.handle_data(" ")
        self._end_block(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        self._end_block(tag)

    def _end_block(self, tag: str) -> None:
        if tag in self.LINES:
            self.breaks = max(self.breaks, 1)
        elif tag in self.PARAGRAPHS:
            self.breaks = max(self.breaks, 2)

    def handle_data(self, data: str) -> None:
        text = re.sub(r"\s+", " ", data)
        if self.hidden or (self.breaks and not text.strip()):
            return
        if self.breaks and self.chunks:
            self.chunks.append("\n" * min(self.breaks, 2))
        self.breaks = 0
        self.chunks.append(text)


def _html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return "\n".join(line.strip() for line in "".join(parser.chunks).split("\n")).strip()


def _automatic(message: EmailMessage, subject: str) -> bool:
    """Sent by a machine (RFC 3834 and the headers responders use instead), or an
    out-of-office subject in Spanish or English."""
    submitted = fold(_raw_header(message, "auto-submitted"))
    if submitted and not submitted.startswith("no"):
        return True
    if any(_raw_header(message, flag).strip() for flag in AUTOMATIC_FLAGS):
        return True
    if fold(_raw_header(message, "precedence")) in AUTOMATIC_PRECEDENCE:
        return True
    return AUTOMATIC_SUBJECT.match(fold(subject)) is not None


def _bounce(message: EmailMessage, sender: str, subject: str, body: str) -> Bounce | None:
    """The failed delivery an RFC 3464 report describes; else, for a mailer daemon's mail
    without one, what its headers and text say. A report of a delay or a success is None."""
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            return _report(part)
    if sender.partition("@")[0] not in BOUNCE_SENDERS and not BOUNCE_SUBJECT.match(fold(subject)):
        return None
    failed = _address(_raw_header(message, "x-failed-recipients").split(",")[0])  # Exim's
    status = STATUS_CODE.search(body)
    line = body[body.rfind("\n", 0, status.start()) + 1 :].split("\n")[0] if status else ""
    return Bounce(failed or None, status.group() if status else "", _one_line(line))


def _report(part: Message) -> Bounce | None:
    """The first failed recipient of a delivery-status part (RFC 3464 §2.3): its
    Original-Recipient (the address we sent to) or Final-Recipient, Status and
    Diagnostic-Code, each without its type ("rfc822;", "smtp;")."""
    payload = part.get_payload()
    blocks = payload[1:] if isinstance(payload, list) else []  # [0] is about the message
    fields = [
        {key.lower(): _one_line(str(value)) for key, value in block.raw_items()}
        for block in blocks
        if isinstance(block, Message)
    ]
    failed = [f for f in fields if fold(f.get("action", "failed")) == "failed"]
    if fields and not failed:
        return None
    if not failed:
        return Bounce(None, "", "")
    first = failed[0]
    recipient = first.get("original-recipient") or first.get("final-recipient") or ""
    return Bounce(
        _address(_typed(recipient)) or None,
        first.get("status", "").split(" ")[0],
        _typed(first.get("diagnostic-code", "")),
    )


def _typed(value: str) -> str:
    """An RFC 3464 typed value without its type: "rfc822; rosa@example.pe" -> "rosa@example.pe"."""
    kind, semicolon, rest = value.partition(";")
    return rest.strip() if semicolon else kind.strip()


def _attachments(message: EmailMessage) -> tuple[str, ...]:
    """The names of the files attached, not looking inside attached messages (a bounce's copy
    of our own mail is not something the customer attached)."""
    names: list[str] = []
    pending: list[Message] = [message]  # a stack, not recursion: MIME trees can be deep
    while pending and len(names) < MOST_ATTACHMENTS:
        part = pending.pop()
        children = part.get_payload()
        if part.get_content_maintype() == "multipart" and isinstance(children, list):
            pending.extend(child for child in reversed(children) if isinstance(child, Message))
            continue
        name = _or(None, part.get_filename)
        if name and _one_line(name):
            names.append(_one_line(name)[:255])
    return tuple(names)
