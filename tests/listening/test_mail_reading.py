"""Reading customers' email replies from their raw bytes: real messages as mail clients write
them (tests/data/mail/*.eml), odd charsets, machines' mail, and hostile bytes."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.listening.mail_reading import TEXT_LIMIT, Bounce, IncomingMail, read_mail

MAIL = Path(__file__).parent.parent / "data" / "mail"
FIXTURES = sorted(MAIL.glob("*.eml"))
PURE = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def fixture(name: str) -> IncomingMail:
    return read_mail((MAIL / name).read_bytes())


def plain(headers: str, body: bytes, charset: str = "utf-8") -> bytes:
    """A one-part text/plain message with `headers` (one a line) above the usual ones."""
    head = f"{headers}\nFrom: rosa@example.pe\nContent-Type: text/plain; charset={charset}\n"
    return head.replace("\n", "\r\n").encode() + b"\r\n" + body


def test_gmail_reply_in_spanish_keeps_what_she_wrote_and_names_our_message() -> None:
    mail = fixture("01-gmail-alternative.eml")
    assert mail == IncomingMail(
        message_id="<CAF3x9q7Yk2mPq=Lr8sD1@mail.gmail.com>",
        in_reply_to="<follow-up.42.day7@postventa.mitienda.pe>",
        references=(
            "<follow-up.41.day1@postventa.mitienda.pe>",
            "<follow-up.42.day7@postventa.mitienda.pe>",
        ),
        sender="rosa.perez@example.pe",
        sender_name="Rosa Pérez",
        subject="Re: ¿Qué tal tu compra?",
        text="Hola, el jarrón llegó con una grieta en la base. ¿Me lo pueden cambiar?",
        automatic=False,
        bounce=None,
        attachments=(),
    )


def test_phone_reply_drops_sent_from_my_iphone_and_a_wrapped_spanish_quote_header() -> None:
    mail = fixture("02-iphone.eml")
    assert mail.text == (
        "Todavía no me llega y ya pasaron 5 días.\n"
        "- El tracking no se mueve\n"
        "- Nadie contesta el teléfono"
    )
    assert (mail.sender, mail.sender_name) == ("carlos.quispe@example.pe", "Carlos Quispe")
    assert mail.message_id == "<7D1E2C4A-99B0-4F1B-8C3D-2E5A6B7C8D9E@example.pe>"


def test_latin1_outlook_reply_is_decoded_and_its_history_and_signature_dropped() -> None:
    mail = fixture("03-latin1-outlook.eml")
    assert mail.text == (
        "Buenas tardes:\n\n"
        "La máquina funciona, pero el técnico no vino el miércoles. ¿Cuándo lo mandan?"
    )
    assert mail.subject == "RE: Valoración de su compra"
    assert (mail.sender, mail.sender_name) == ("jmunoz@example.es", "José Muñoz")
    assert mail.in_reply_to == "<follow-up.77.day21@postventa.mitienda.pe>"


def test_html_only_mail_is_read_as_the_text_a_person_sees() -> None:
    mail = fixture("04-html-only.eml")
    assert mail.text == (
        "Me encantó el producto, gracias.\nLo recomiendo a mis amigas.\n\nNota: 10/10"
    )
    assert mail.sender == "ana@example.com"
    assert mail.sender_name == ""


def test_attachments_are_named_and_the_text_kept() -> None:
    mail = fixture("05-attachment.eml")
    assert mail.attachments == ("boleta-F001-2331.pdf", "foto del daño.jpg")
    assert mail.text == "Adjunto la boleta y una foto del daño."


def test_out_of_office_reply_is_automatic() -> None:
    mail = fixture("06-out-of-office.eml")
    assert mail.automatic is True
    assert mail.bounce is None
    assert mail.subject == "Respuesta automática: Tu compra"


def test_delivery_report_names_the_address_that_failed_and_why() -> None:
    mail = fixture("07-bounce.eml")
    assert mail.bounce == Bounce(
        recipient="pedro.nunez@example.pe",
        status="5.1.1",
        diagnostic="550 5.1.1 <pedro.nunez@example.pe>: Recipient address rejected: User unknown",
    )
    assert mail.automatic is True
    assert mail.attachments == ()  # the catalogue in our returned mail is not the customer's


def test_mail_without_message_id_gets_one_that_is_the_same_each_time() -> None:
    raw = (MAIL / "08-no-message-id.eml").read_bytes()
    assert read_mail(raw).message_id == (
        "<1ca1e8c4a7ecee4e19fd92b2456a28ce15a5ce0e4a187a30dd26b5870e472f1e@postventa.invalid>"
    )
    assert read_mail(raw + b"\r\nOtra cosa.").message_id != read_mail(raw).message_id
    assert read_mail(raw).text == "Quisiera saber si tienen la talla M."


def test_gmail_quote_header_in_english_and_outlook_original_message_are_history() -> None:
    english = plain(
        "Subject: Re: Your order",
        b"Fine, thanks!\r\n\r\nOn Fri, Nov 27, 2026 at 10:00 AM Mi Tienda <\r\n"
        b"hola@mitienda.pe> wrote:\r\n\r\n> Hi Rosa, how was it?\r\n",
    )
    outlook = plain(
        "Subject: RE: Your order",
        b"Still broken.\r\n\r\n-----Original Message-----\r\nFrom: Mi Tienda\r\n\r\nHi\r\n",
    )
    assert read_mail(english).text == "Fine, thanks!"
    assert read_mail(outlook).text == "Still broken."


def test_a_line_opening_with_thanks_that_goes_on_is_not_a_signature() -> None:
    body = (
        "Hola,\nGracias, pero la talla era pequeña y quiero cambiarla.\n\nEnviado desde mi iPhone"
    )
    assert read_mail(plain("Subject: Re: hola", body.encode())).text == (
        "Hola,\nGracias, pero la talla era pequeña y quiero cambiarla.\n\nEnviado desde mi iPhone"
    )


def test_a_quote_with_no_header_below_the_reply_is_history() -> None:
    body = b"Todo bien.\r\n\r\n> Hola Rosa\r\n> \xc2\xbfQu\xc3\xa9 tal?\r\n"
    assert read_mail(plain("Subject: Re: hola", body)).text == "Todo bien."


def test_unknown_or_wrong_charsets_do_not_lose_the_accents() -> None:
    latin1 = "¿Cuándo llega mi pedido? Mañana no estoy.".encode("iso-8859-1")
    expected = "¿Cuándo llega mi pedido? Mañana no estoy."
    assert read_mail(plain("Subject: a", latin1, charset="x-unheard-of")).text == expected
    assert read_mail(plain("Subject: a", latin1, charset="utf-8")).text == expected
    assert read_mail(plain("Subject: a", latin1, charset="us-ascii")).text == expected
    assert read_mail(plain("Subject: a", b"\x81 ok", charset="x-unheard-of")).text == "\ufffd ok"


def test_a_subject_sent_as_raw_latin1_bytes_is_decoded() -> None:
    raw = b"From: rosa@example.pe\r\nSubject: Re: Valoraci\xf3n\r\n\r\nok"
    assert read_mail(raw).subject == "Re: Valoración"


def test_nul_and_other_unstorable_characters_are_removed() -> None:
    raw = plain("Subject: Re:\x00 hola\x07", b"Lleg\xc3\xb3\x00 roto\x1b.\r\n\tFin")
    mail = read_mail(raw)
    assert mail.text == "Llegó roto.\nFin"
    assert mail.subject == "Re: hola"


def test_text_is_capped() -> None:
    mail = read_mail(plain("Subject: largo", b"palabra " * 5000))
    assert len(mail.text) == TEXT_LIMIT - 1  # the cut leaves a trailing space, stripped
    assert mail.text.startswith("palabra palabra")


def test_automatic_by_its_headers_or_an_out_of_office_subject() -> None:
    assert read_mail(plain("Subject: Re: hola\nAuto-Submitted: auto-generated", b"x")).automatic
    assert read_mail(plain("Subject: Re: hola\nPrecedence: bulk", b"x")).automatic
    assert read_mail(plain("Subject: Re: hola\nX-Autoreply: yes", b"x")).automatic
    assert read_mail(plain("Subject: Re: hola\nX-Autorespond: on", b"x")).automatic
    assert read_mail(plain("Subject: Automatic reply: Your order", b"x")).automatic
    assert read_mail(plain("Subject: Out of Office: Tu compra", b"x")).automatic
    assert read_mail(plain("Subject: FUERA DE LA OFICINA", b"x")).automatic
    assert not read_mail(plain("Subject: Re: hola\nAuto-Submitted: no", b"x")).automatic
    assert not read_mail(plain("Subject: Re: out of office hours?", b"x")).automatic


def test_mailer_daemon_without_a_report_is_a_bounce_with_what_it_says() -> None:
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.example.pe>\r\n"
        b"Subject: Mail delivery failed: returning message to sender\r\n"
        b"X-Failed-Recipients: Pedro@Example.pe\r\n\r\n"
        b"This message was created automatically by mail delivery software.\r\n\r\n"
        b"  Pedro@Example.pe\r\n    host mx.example.pe said: 550 5.7.1 Mailbox disabled\r\n"
    )
    assert read_mail(raw).bounce == Bounce(
        "pedro@example.pe", "5.7.1", "host mx.example.pe said: 550 5.7.1 Mailbox disabled"
    )
    nameless = b"From: MAILER-DAEMON@mx.example.pe\r\nSubject: Returned mail\r\n\r\nSorry.\r\n"
    assert read_mail(nameless).bounce == Bounce(None, "", "")


def test_a_delay_report_is_automatic_but_no_bounce() -> None:
    bounce = (MAIL / "07-bounce.eml").read_bytes()
    delayed = bounce.replace(b"Action: failed", b"Action: delayed")
    assert read_mail(delayed).bounce is None
    assert read_mail(delayed).automatic is True


def test_references_keep_the_root_and_the_nearest() -> None:
    ids = " ".join(f"<m{n}@example.pe>" for n in range(300))
    mail = read_mail(
        plain(f"Subject: x\nReferences: {ids}\nIn-Reply-To: junk <m299@example.pe>", b"")
    )
    assert len(mail.references) == 100
    assert mail.references[:2] == ("<m0@example.pe>", "<m201@example.pe>")
    assert mail.references[-1] == "<m299@example.pe>"
    assert mail.in_reply_to == "<m299@example.pe>"


def test_garbage_bytes_give_what_can_be_read() -> None:
    mail = read_mail(b"\x00\xff\xfe\x80garbage\r\n\r\n\x00\x9d")
    assert mail.message_id.endswith("@postventa.invalid>")
    assert (mail.sender, mail.subject, mail.bounce, mail.automatic) == ("", "", None, False)
    assert "\x00" not in mail.text


def test_thousands_of_nested_parts_give_the_headers() -> None:
    nested = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n)
        for n in range(3000)
    )
    mail = read_mail(b"From: rosa@example.pe\r\nSubject: hondo\r\n" + nested + b"\r\nhola")
    assert (mail.sender, mail.subject, mail.text) == ("rosa@example.pe", "hondo", "")


def test_a_hostile_body_is_read_in_well_under_a_second() -> None:
    # Each of these took the reply parser 5 to 30 seconds before the guards.
    for body in (b"On " + b"a" * 30_000, b"On " + b"a " * 15_000, b"x" + b"\n" * 30_000 + b"x"):
        started = time.perf_counter()
        read_mail(plain("Subject: x", body))
        assert time.perf_counter() - started < 1


@PURE
@given(st.binary(max_size=2000))
def test_any_bytes_are_read_without_raising(raw: bytes) -> None:
    mail = read_mail(raw)
    assert "\x00" not in mail.text + mail.subject + mail.sender + mail.message_id


@PURE
@given(st.sampled_from(FIXTURES), st.integers(0, 10_000), st.binary(min_size=1, max_size=40))
def test_real_mail_with_bytes_overwritten_is_read_without_raising(
    path: Path, at: int, junk: bytes
) -> None:
    raw = path.read_bytes()
    at %= len(raw)
    mail = read_mail(raw[:at] + junk + raw[at + len(junk) :])
    assert len(mail.text) <= TEXT_LIMIT
