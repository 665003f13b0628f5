"""The real transports: the `twilio` client against the fake server, smtplib against aiosmtpd."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy
from email.utils import format_datetime
from typing import Any

import pytest

from scheduler.clock import utcnow
from scheduler.config import Config, defaults
from scheduler.lifecycle import Channel
from scheduler.sending.transports import Failure, Outgoing, TransportError
from scheduler.sending.transports.smtp_email import SmtpEmail
from scheduler.sending.transports.twilio_sms import TwilioSms, TwilioWhatsApp
from tests.processes import free_port
from tests.smtp_server import EMAIL, Mailbox, smtp, smtp_transport  # noqa: F401 - fixture
from tests.twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Respond

__all__ = ["smtp"]

SMS = Outgoing(
    "follow-up:7", Channel.SMS, "+51987654321", "Hola Rosa", status_callback="http://x/cb?f=7"
)


def twilio_config(fake: FakeTwilio, **twilio: Any) -> Config:
    settings = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": "+15005550006",
        "api_base_url": fake.url,
        **twilio,
    }
    return defaults().replace(sms={"transport": "twilio"}, twilio=settings)


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


def transport(fake: FakeTwilio, timeout: float = 5.0, **twilio: Any) -> TwilioSms:
    config = twilio_config(fake, **twilio)
    return TwilioSms(config.twilio, config.business.public_url, timeout)


def test_sms_goes_through_the_twilio_client(fake: FakeTwilio) -> None:
    sent = transport(fake).send(SMS)
    [post] = fake.posts()
    assert post.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert post.params["To"] == "+51987654321" and post.params["From"] == "+15005550006"
    assert post.params["Body"] == "Hola Rosa" and post.params["StatusCallback"] == "http://x/cb?f=7"
    assert sent.provider_id.startswith("SM") and sent.status == "queued"


def test_sms_through_a_messaging_service(fake: FakeTwilio) -> None:
    service = "MG" + "ab" * 16
    sent = transport(fake, from_number="", messaging_service_sid=service).send(SMS)
    [post] = fake.posts()
    assert post.params["MessagingServiceSid"] == service and "From" not in post.params
    assert sent.status == "accepted"


@pytest.mark.parametrize(
    "behaviour, failure, code",
    [
        (Respond.error(400, 21211, "The 'To' number is not valid"), Failure.PERMANENT, "21211"),
        (Respond.error(400, 21610, "unsubscribed recipient"), Failure.UNSUBSCRIBED, "21610"),
        (Respond.error(400, 21614, "not a mobile number"), Failure.PERMANENT, "21614"),
        (Respond.error(429, 20429, "Too Many Requests"), Failure.RETRY, "20429"),
        (Respond.error(500, 20500, "Internal Server Error"), Failure.UNCERTAIN, "20500"),
        (Respond.created_then_error(503), Failure.UNCERTAIN, "20503"),
        (Respond.drop(create=True), Failure.UNCERTAIN, None),
    ],
)
def test_twilio_errors_are_sorted_by_what_they_mean(
    fake: FakeTwilio, behaviour: Respond, failure: Failure, code: str | None
) -> None:
    fake.script(behaviour)
    with pytest.raises(TransportError) as raised:
        transport(fake).send(SMS)
    assert raised.value.failure is failure and raised.value.code == code


@pytest.mark.parametrize(
    "header, wait",
    [
        ("120", timedelta(seconds=120)),
        (None, None),
        ("soon", None),
        ("99999999", timedelta(days=1)),
    ],
)
def test_a_429_brings_twilio_s_retry_after(
    fake: FakeTwilio, header: str | None, wait: timedelta | None
) -> None:
    busy = Respond.error(429, 20429, "Too Many Requests")
    fake.script(busy if header is None else replace(busy, retry_after=header))
    with pytest.raises(TransportError) as raised:
        transport(fake).send(SMS)
    assert raised.value.failure is Failure.RETRY and raised.value.retry_after == wait


def test_retry_after_as_a_date(fake: FakeTwilio) -> None:
    later = format_datetime(utcnow() + timedelta(minutes=10), usegmt=True)
    fake.script(Respond.error(429, 20429, "Too Many Requests", retry_after=later))
    with pytest.raises(TransportError) as raised:
        transport(fake).send(SMS)
    assert raised.value.retry_after is not None
    assert timedelta(minutes=9) < raised.value.retry_after <= timedelta(minutes=10)
    fake.script(Respond.error(500, 20500, "Internal Server Error", retry_after="60"))
    with pytest.raises(TransportError) as raised:  # only a 429 asks us to wait
        transport(fake).send(SMS)
    assert raised.value.retry_after is None


def test_a_timeout_is_uncertain_and_refused_connection_is_retryable(fake: FakeTwilio) -> None:
    fake.script(Respond.hang(3, create=True))
    with pytest.raises(TransportError) as timed_out:
        transport(fake, timeout=0.3).send(SMS)
    assert timed_out.value.failure is Failure.UNCERTAIN
    closed = f"http://127.0.0.1:{free_port()}"  # a port nobody listens on
    config = twilio_config(fake, api_base_url=closed)
    with pytest.raises(TransportError) as refused:
        TwilioSms(config.twilio, config.business.public_url, 1.0).send(SMS)
    assert refused.value.failure is Failure.RETRY


def test_find_looks_up_a_send_whose_answer_was_lost(fake: FakeTwilio) -> None:
    sms = transport(fake)
    since = utcnow() - timedelta(minutes=5)
    assert sms.find(SMS, since) is None
    fake.script(Respond.created_then_error(500))
    with pytest.raises(TransportError):
        sms.send(SMS)
    found = sms.find(SMS, since)
    assert found is not None and found.provider_id == fake.messages[0]["sid"]
    # Another text to that number since: it may be ours, altered on the way; nobody can tell.
    other = Outgoing("follow-up:8", Channel.SMS, "+51987654321", "another text")
    with pytest.raises(TransportError) as unsure:
        sms.find(other, since)
    assert unsure.value.failure is Failure.UNCERTAIN
    elsewhere = Outgoing("follow-up:9", Channel.SMS, "+51911111111", "Hola Rosa")
    assert sms.find(elsewhere, since) is None


# --- SMTP ------------------------------------------------------------------------------------


def test_email_goes_through_a_real_smtp_server(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    sent = smtp_transport(port).send(EMAIL)
    [envelope] = mailbox.received
    assert envelope.mail_from == "hola@mitienda.pe" and envelope.rcpt_tos == ["rosa@example.pe"]
    email = message_from_bytes(envelope.content, policy=policy.default)
    assert email["Subject"] == "Tu compra" and email["From"] == "hola@mitienda.pe"
    assert email["List-Unsubscribe"] == "<http://x/unsubscribe/t>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["Message-ID"] == sent.provider_id and sent.status == "sent"
    assert email.get_content_type() == "multipart/alternative"
    plain = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert plain is not None and plain.get_content().splitlines() == ["Hola Rosa", "", "Todo bien?"]
    assert html is not None and "<p>Hola Rosa</p>" in html.get_content()


def test_smtp_refusals_are_permanent_or_passing(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    mailbox.refuse_rcpt = "550 5.1.1 no such user"
    with pytest.raises(TransportError) as refused:
        smtp_transport(port).send(EMAIL)
    assert refused.value.failure is Failure.PERMANENT and refused.value.code == "550"
    mailbox.refuse_rcpt = "450 4.2.0 greylisted, try again later"
    with pytest.raises(TransportError) as greylisted:
        smtp_transport(port).send(EMAIL)
    assert greylisted.value.failure is Failure.RETRY and greylisted.value.code == "450"
    mailbox.refuse_rcpt, mailbox.refuse_data = None, "451 4.3.0 try again later"
    with pytest.raises(TransportError) as later:
        smtp_transport(port).send(EMAIL)
    assert later.value.failure is Failure.RETRY and later.value.code == "451"
    assert mailbox.received == []


def test_smtp_server_down_is_retryable_and_smtp_cannot_reconcile() -> None:
    email = smtp_transport(free_port())  # nobody listens there
    with pytest.raises(TransportError) as down:
        email.send(EMAIL)
    assert down.value.failure is Failure.RETRY
    with pytest.raises(TransportError) as lookup:
        email.find(EMAIL, utcnow())
    assert lookup.value.failure is Failure.UNCERTAIN


def test_starttls_is_required_when_configured(smtp: tuple[Mailbox, int]) -> None:
    """A server that cannot encrypt gets nothing: the password and the email stay unsent."""
    mailbox, port = smtp
    config = defaults().replace(
        email={
            "transport": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "starttls": True,
            "from_address": "hola@mitienda.pe",
        }
    )
    with pytest.raises(TransportError) as refused:
        SmtpEmail(config.email, 5.0).send(EMAIL)
    assert refused.value.failure is Failure.RETRY
    assert "STARTTLS extension not supported by server" in str(refused.value)
    assert mailbox.received == []


def whatsapp_transport(fake: FakeTwilio) -> TwilioWhatsApp:
    config = twilio_config(fake).replace(
        whatsapp={"transport": "twilio", "from_number": "whatsapp:+14155238886"}
    )
    return TwilioWhatsApp(config.twilio, config.whatsapp, config.business.public_url, 5.0)


WA_TEXT = "Hola Rosa, gracias por comprar Lavadora."
CONTENT = "HX" + "0f" * 16


def test_whatsapp_outside_the_window_goes_as_the_content_template(fake: FakeTwilio) -> None:
    fake.add_content(CONTENT, "Hola {{1}}, gracias por comprar {{2}}.")
    message = Outgoing(
        "follow-up:7",
        Channel.WHATSAPP,
        "whatsapp:+51987654321",
        WA_TEXT,
        content_sid=CONTENT,
        content_variables={"1": "Rosa", "2": "Lavadora"},
    )
    whatsapp = whatsapp_transport(fake)
    sent = whatsapp.send(message)
    [post] = fake.posts()
    assert post.params["From"] == "whatsapp:+14155238886" and "Body" not in post.params
    assert post.params["ContentSid"] == CONTENT
    assert post.params["ContentVariables"] == '{"1": "Rosa", "2": "Lavadora"}'
    # Twilio fills the body from the template: the lookup before a resend finds it.
    assert whatsapp.find(message, utcnow() - timedelta(minutes=5)) == sent


def test_whatsapp_free_text_outside_the_window_is_63016_and_final(fake: FakeTwilio) -> None:
    free = Outgoing("message:3", Channel.WHATSAPP, "whatsapp:+51987654321", WA_TEXT)
    with pytest.raises(TransportError) as refused:
        whatsapp_transport(fake).send(free)
    assert (refused.value.code, refused.value.failure) == ("63016", Failure.PERMANENT)
    fake.customer_wrote("+51987654321")
    assert whatsapp_transport(fake).send(free).provider_id.startswith("SM")
