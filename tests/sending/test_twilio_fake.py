"""The Twilio fake, driven by the real twilio SDK: what the SMS transport will see in production."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from freezegun import freeze_time
from twilio.base.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    TwilioException,
    TwilioRestException,
)
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from tests.twilio_fake import ACCOUNT_SID, AUTH_TOKEN, OUTSIDE_WINDOW, FakeTwilio, Respond

TO = "+34600111222"
OTHER = "+34600333444"
FROM = "+15005550006"
SERVICE = "MG" + "ab" * 16
CUSTOMER = "+51987654321"
WA_TO = "whatsapp:" + CUSTOMER
WA_FROM = "whatsapp:+14155238886"
CONTENT = "HX" + "0123456789abcdef" * 2
TEMPLATE = "Hola {{1}}, ¿qué tal va tu {{2}}? Responde SI o NO."


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def sdk(fake: FakeTwilio) -> Iterator[Any]:
    twilio = fake.client(timeout=2)
    yield twilio
    twilio.http_client.session.close()


def _send(sdk: Any, to: str = TO, body: str = "Hola", **fields: Any) -> Any:
    if "messaging_service_sid" not in fields:
        fields.setdefault("from_", FROM)
    return sdk.messages.create(to=to, body=body, **fields)


def test_create_with_from_returns_a_realistic_message(fake: FakeTwilio, sdk: Any) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    message = _send(sdk, body="Hola, ¿qué tal el coche?")

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.account_sid == ACCOUNT_SID
    assert (message.to, message.from_, message.body) == (TO, FROM, "Hola, ¿qué tal el coche?")
    assert message.status == "queued"
    assert message.messaging_service_sid is None
    assert (message.num_segments, message.num_media) == ("1", "0")
    assert message.direction == "outbound-api"
    assert before <= message.date_created <= datetime.now(UTC)
    assert message.date_updated == message.date_created
    assert message.date_sent is None and message.error_code is None and message.price is None
    assert (message.price_unit, message.api_version) == ("USD", "2010-04-01")
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message.sid}.json"
    assert [stored["sid"] for stored in fake.messages] == [message.sid]
    assert re.fullmatch(
        r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", fake.messages[0]["date_created"]
    )

    (post,) = fake.posts()
    assert post.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert post.params == {"To": TO, "From": FROM, "Body": "Hola, ¿qué tal el coche?"}
    assert post.headers["Authorization"].startswith("Basic ")


def test_create_with_messaging_service_is_accepted_without_a_from(sdk: Any) -> None:
    message = _send(sdk, messaging_service_sid=SERVICE)

    assert message.status == "accepted"
    assert message.from_ is None
    assert message.messaging_service_sid == SERVICE
    assert message.num_segments == "0"  # Twilio counts segments once a sender is picked


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("[" * 80, "1"),
        ("[" * 81, "2"),
        ("ñ🙂" * 23, "1"),
        ("ñ🙂" * 24, "2"),
    ],
)
def test_num_segments_follows_gsm7_and_ucs2_limits(sdk: Any, body: str, segments: str) -> None:
    assert _send(sdk, body=body).num_segments == segments


@pytest.mark.parametrize(
    ("fields", "code", "text"),
    [
        ({"to": "600111222"}, 21211, "The 'To' number 600111222 is not a valid phone number."),
        ({"to": "+34 600"}, 21211, "is not a valid phone number"),
        ({"body": ""}, 21602, "Message body is required."),
        ({"from_": None}, 21603, "A 'From' phone number is required."),
        ({"body": "x" * 1601}, 21617, "1600 character limit"),
    ],
)
def test_invalid_requests_are_rejected_with_twilio_codes(
    fake: FakeTwilio, sdk: Any, fields: dict[str, Any], code: int, text: str
) -> None:
    arguments: dict[str, Any] = {"to": TO, "body": "Hola", "from_": FROM, **fields}
    with pytest.raises(TwilioRestException) as raised:
        sdk.messages.create(**arguments)

    assert raised.value.status == 400
    assert raised.value.code == code
    assert raised.value.msg.startswith("Unable to create record: ")
    assert text in raised.value.msg
    assert fake.messages == []
    assert len(fake.posts()) == 1


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20503)])
def test_scripted_errors_raise_then_the_default_is_created(
    fake: FakeTwilio, sdk: Any, status: int, code: int
) -> None:
    fake.script(Respond.error(status, code, "Scripted failure"))

    with pytest.raises(TwilioRestException) as raised:
        _send(sdk)
    assert (raised.value.status, raised.value.code) == (status, code)
    assert raised.value.msg == "Unable to create record: Scripted failure"
    assert fake.messages == []

    assert _send(sdk).status == "queued"
    assert len(fake.messages) == 1


def test_scripted_behaviours_are_consumed_in_order(fake: FakeTwilio, sdk: Any) -> None:
    fake.script(Respond.error(429, 20429, "Too Many Requests"), Respond.created())
    fake.script(Respond.error(500, 20500, "Boom"))

    statuses = []
    for _ in range(4):
        try:
            _send(sdk)
            statuses.append(201)
        except TwilioRestException as exc:
            statuses.append(exc.status)
    assert statuses == [429, 201, 500, 201]


def test_created_then_error_stores_the_message_but_raises(fake: FakeTwilio, sdk: Any) -> None:
    fake.script(Respond.created_then_error())

    with pytest.raises(TwilioRestException) as raised:
        _send(sdk, to=OTHER)
    assert (raised.value.status, raised.value.code) == (500, 20500)

    (stored,) = fake.messages
    assert stored["to"] == OTHER
    assert [m.sid for m in sdk.messages.list(to=OTHER)] == [stored["sid"]]


def test_hang_times_out_and_stores_nothing_without_create(fake: FakeTwilio) -> None:
    impatient = fake.client(timeout=0.3)
    fake.script(Respond.hang(5))
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            _send(impatient)
        assert fake.messages == []
        assert impatient.messages.list(to=TO) == []
    finally:
        impatient.http_client.session.close()


def test_hang_with_create_times_out_but_the_message_is_findable(fake: FakeTwilio) -> None:
    impatient = fake.client(timeout=0.3)
    started = datetime.now(UTC)
    fake.script(Respond.hang(5, create=True))
    try:
        with pytest.raises(requests.exceptions.ReadTimeout) as raised:
            _send(impatient, body="Lost answer")
        assert not isinstance(raised.value, requests.exceptions.ConnectionError)

        found = impatient.messages.list(to=TO, date_sent_after=started)
        assert [(m.sid, m.body) for m in found] == [(fake.messages[0]["sid"], "Lost answer")]
    finally:
        impatient.http_client.session.close()


def test_stop_does_not_wait_for_a_hanging_request() -> None:
    fake = FakeTwilio().start()
    impatient = fake.client(timeout=0.2)
    fake.script(Respond.hang(30))
    with pytest.raises(requests.exceptions.ReadTimeout):
        _send(impatient)
    impatient.http_client.session.close()

    began = time.monotonic()
    fake.stop()
    assert time.monotonic() - began < 5  # far below the 30 s the handler was told to wait


def test_drop_raises_connection_error_after_one_attempt(fake: FakeTwilio, sdk: Any) -> None:
    fake.script(Respond.drop(create=True))

    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        _send(sdk)
    assert isinstance(raised.value.args[0], ProtocolError)
    assert len(fake.posts()) == 1  # the SDK does not resend the POST by itself
    assert len(fake.messages) == 1


def test_connection_refused_raises_connection_error() -> None:
    fake = FakeTwilio().start()
    sdk = fake.client(timeout=2)
    fake.stop()
    try:
        with pytest.raises(requests.exceptions.ConnectionError) as raised:
            _send(sdk)
    finally:
        sdk.http_client.session.close()
    reason = raised.value.args[0]
    assert isinstance(reason, MaxRetryError)
    assert isinstance(reason.reason, NewConnectionError)
    assert fake.messages == []


def test_list_filters_by_to_and_date_sent_newest_first(fake: FakeTwilio, sdk: Any) -> None:
    old = _send(sdk, body="old")
    first = _send(sdk, body="first")
    _send(sdk, to=OTHER, body="other")
    second = _send(sdk, body="second")
    yesterday = datetime.now(UTC) - timedelta(days=1)
    fake.messages[0]["date_created"] = yesterday.strftime("%a, %d %b %Y %H:%M:%S +0000")

    to_me = sdk.messages.list(to=TO)
    assert [m.sid for m in to_me] == [second.sid, first.sid, old.sid]

    recent = sdk.messages.list(to=TO, date_sent_after=datetime.now(UTC) - timedelta(hours=1))
    assert [m.sid for m in recent] == [second.sid, first.sid]

    older = sdk.messages.list(date_sent_before=datetime.now(UTC) - timedelta(hours=1))
    assert [m.sid for m in older] == [old.sid]

    that_day = sdk.messages.list(date_sent=yesterday.strftime("%Y-%m-%d"))
    assert [m.body for m in that_day] == ["old"]

    assert [m.body for m in sdk.messages.list(to=TO, limit=2)] == ["second", "first"]
    assert [m.body for m in sdk.messages.stream(from_=FROM)] == [
        "second",
        "other",
        "first",
        "old",
    ]
    listing = next(r for r in reversed(fake.requests) if r.method == "GET")
    assert listing.params == {"From": FROM}


def test_date_sent_filter_uses_date_sent_once_set(fake: FakeTwilio, sdk: Any) -> None:
    message = _send(sdk)
    fake.messages[0]["date_created"] = "Mon, 02 Jan 2023 10:00:00 +0000"
    assert sdk.messages.list(date_sent_after=datetime.now(UTC) - timedelta(hours=1)) == []

    fake.set_status(message.sid, "delivered")

    (delivered,) = sdk.messages.list(date_sent_after=datetime.now(UTC) - timedelta(hours=1))
    assert delivered.status == "delivered"
    assert delivered.date_sent is not None


def test_bad_date_filter_is_a_400(fake: FakeTwilio, sdk: Any) -> None:
    with pytest.raises(TwilioException) as raised:
        sdk.messages.list(date_sent_after="yesterday")
    assert raised.value.args[1].status_code == 400


def test_fetch_by_sid_and_unknown_sid(fake: FakeTwilio, sdk: Any) -> None:
    sent = _send(sdk)
    fake.set_status(sent.sid, "undelivered", error_code=30003)

    fetched = sdk.messages(sent.sid).fetch()
    assert (fetched.sid, fetched.status, fetched.error_code) == (sent.sid, "undelivered", 30003)

    missing = "SM" + "0" * 32
    with pytest.raises(TwilioRestException) as raised:
        sdk.messages(missing).fetch()
    assert (raised.value.status, raised.value.code) == (404, 20404)
    assert raised.value.msg.startswith("Unable to fetch record: ")
    with pytest.raises(KeyError):
        fake.set_status(missing, "delivered")


def test_bad_credentials_are_a_401(fake: FakeTwilio) -> None:
    intruder = fake.client(timeout=2, password="not-" + AUTH_TOKEN)
    try:
        with pytest.raises(TwilioRestException) as raised:
            _send(intruder)
        # Lists do not get a TwilioRestException: Page raises the plain base class.
        with pytest.raises(TwilioException) as listing:
            intruder.messages.list()
    finally:
        intruder.http_client.session.close()
    assert (raised.value.status, raised.value.code) == (401, 20003)
    assert listing.value.args[1].status_code == 401
    assert fake.messages == []
    assert len(fake.requests) == 2  # recorded even when refused


def test_missing_credentials_are_a_401(fake: FakeTwilio) -> None:
    answer = requests.post(f"{fake.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", timeout=2)
    assert answer.status_code == 401
    assert answer.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_another_account_in_the_path_is_a_404(fake: FakeTwilio) -> None:
    other = "AC" + "f" * 32
    stranger = fake.client(timeout=2, account_sid=other)
    try:
        with pytest.raises(TwilioRestException) as raised:
            _send(stranger)
    finally:
        stranger.http_client.session.close()
    assert (raised.value.status, raised.value.code) == (404, 20404)
    assert fake.posts()[0].path == f"/2010-04-01/Accounts/{other}/Messages.json"


def test_status_callback_and_validity_period_are_recorded(fake: FakeTwilio, sdk: Any) -> None:
    callback = "https://postventa.example/twilio/status?follow_up=42"
    _send(sdk, status_callback=callback, validity_period=3600)
    sdk.messages.list()

    (post,) = fake.posts()
    assert post.params["StatusCallback"] == callback
    assert post.params["ValidityPeriod"] == "3600"
    assert [r.method for r in fake.requests] == ["POST", "GET"]


def test_latency_is_added_to_every_request() -> None:
    with FakeTwilio(latency=0.2) as fake:
        sdk = fake.client(timeout=2)
        try:
            began = time.monotonic()
            _send(sdk)
            assert time.monotonic() - began >= 0.2
        finally:
            sdk.http_client.session.close()


def test_url_needs_a_running_server() -> None:
    fake = FakeTwilio()
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fake:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", fake.url)


# -- WhatsApp --


def _refused(call: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as raised:
        call()
    assert raised.value.status == 400
    assert raised.value.msg.startswith("Unable to create record: ")
    return raised.value


def _template(sdk: Any, variables: Any, to: str = WA_TO, **fields: Any) -> Any:
    if "messaging_service_sid" not in fields:
        fields.setdefault("from_", WA_FROM)
    if not isinstance(variables, str):
        variables = json.dumps(variables)
    return sdk.messages.create(to=to, content_sid=CONTENT, content_variables=variables, **fields)


def test_content_message_is_stored_with_its_variables_filled_in(fake: FakeTwilio, sdk: Any) -> None:
    fake.add_content(CONTENT, TEMPLATE)

    message = _template(sdk, {"1": "Rosa", "2": "lavadora"})

    filled = "Hola Rosa, ¿qué tal va tu lavadora? Responde SI o NO."
    assert (message.to, message.from_, message.body) == (WA_TO, WA_FROM, filled)
    assert (message.status, message.error_code) == ("queued", None)
    assert message.num_segments == "1"
    (post,) = fake.posts()
    assert post.params == {
        "To": WA_TO,
        "From": WA_FROM,
        "ContentSid": CONTENT,
        "ContentVariables": '{"1": "Rosa", "2": "lavadora"}',
    }
    fetched = sdk.messages(message.sid).fetch()
    assert (fetched.to, fetched.from_, fetched.body) == (WA_TO, WA_FROM, filled)
    assert [(m.sid, m.body) for m in sdk.messages.list(to=WA_TO)] == [(message.sid, filled)]
    assert sdk.messages.list(to=CUSTOMER) == []  # the prefix is part of the address


def test_content_needs_no_open_window_and_also_goes_by_sms(fake: FakeTwilio, sdk: Any) -> None:
    fake.add_content(CONTENT, "Tu pedido {{1}} ha salido.")

    by_sms = _template(sdk, {"1": "42"}, to=TO, from_=FROM)
    through_service = _template(sdk, {"1": "43"}, messaging_service_sid=SERVICE)

    assert (by_sms.to, by_sms.body, by_sms.num_segments) == (TO, "Tu pedido 42 ha salido.", "1")
    assert (through_service.to, through_service.from_) == (WA_TO, None)
    assert (through_service.status, through_service.num_segments) == ("accepted", "0")


@pytest.mark.parametrize("number", [WA_TO, CUSTOMER])
def test_free_form_inside_the_window_is_accepted(fake: FakeTwilio, sdk: Any, number: str) -> None:
    fake.customer_wrote(number)

    message = _send(sdk, to=WA_TO, body="Claro, te llamamos mañana.", from_=WA_FROM)

    assert (message.to, message.from_, message.status) == (WA_TO, WA_FROM, "queued")
    assert (message.body, message.num_segments) == ("Claro, te llamamos mañana.", "1")


def test_free_form_outside_the_window_is_refused_with_63016(fake: FakeTwilio, sdk: Any) -> None:
    never_wrote = _refused(lambda: _send(sdk, to=WA_TO, from_=WA_FROM))
    fake.customer_wrote(WA_TO, at=datetime.now(UTC) - timedelta(days=2))
    long_ago = _refused(lambda: _send(sdk, to=WA_TO, from_=WA_FROM))
    fake.customer_wrote(OTHER)
    someone_else = _refused(lambda: _send(sdk, to=WA_TO, from_=WA_FROM))

    for refused in (never_wrote, long_ago, someone_else):
        assert refused.code == 63016
        assert refused.msg == f"Unable to create record: {OUTSIDE_WINDOW}"
    assert fake.messages == []
    assert _send(sdk, to=TO).status == "queued"  # SMS has no window


def test_window_runs_24_hours_from_the_last_customer_message(fake: FakeTwilio, sdk: Any) -> None:
    start = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    with freeze_time(start) as clock:
        fake.customer_wrote(WA_TO)  # now, on the fake's clock
        fake.customer_wrote(WA_TO, at=start - timedelta(hours=20))  # older: changes nothing

        clock.tick(timedelta(hours=23, minutes=59))
        inside = _send(sdk, to=WA_TO, from_=WA_FROM, body="inside")
        clock.tick(timedelta(minutes=2))
        outside = _refused(lambda: _send(sdk, to=WA_TO, from_=WA_FROM, body="outside"))

        fake.customer_wrote(CUSTOMER, at=(start + timedelta(days=1)).replace(tzinfo=None))
        reopened = _send(sdk, to=WA_TO, from_=WA_FROM, body="reopened")

    assert inside.date_created == start + timedelta(hours=23, minutes=59)
    assert outside.code == 63016
    assert reopened.date_created == start + timedelta(days=1, minutes=1)
    assert [m["body"] for m in fake.messages] == ["inside", "reopened"]


def test_async_window_failure_is_accepted_then_failed(fake: FakeTwilio, sdk: Any) -> None:
    fake.whatsapp_window_failure = "async"
    callback = "https://postventa.example/twilio/status?follow_up=7"

    message = _send(sdk, to=WA_TO, from_=WA_FROM, status_callback=callback)

    assert (message.status, message.error_code) == ("queued", None)  # as Twilio answers
    fetched = sdk.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("failed", 63016)
    assert fetched.error_message == OUTSIDE_WINDOW
    assert fetched.date_sent is None
    assert [(m.sid, m.status) for m in sdk.messages.list(to=WA_TO)] == [(message.sid, "failed")]
    assert fake.posts()[0].params["StatusCallback"] == callback
    assert [r.method for r in fake.requests] == ["POST", "GET", "GET"]  # no callback posted

    fake.customer_wrote(WA_TO)
    assert _send(sdk, to=WA_TO, from_=WA_FROM).status == "queued"
    assert fake.messages[-1]["error_code"] is None


def test_content_over_1024_characters_is_rejected_with_63021(fake: FakeTwilio, sdk: Any) -> None:
    fake.add_content(CONTENT, "Hola {{1}}")

    refused = _refused(lambda: _template(sdk, {"1": "x" * 1020}))
    longest = _template(sdk, {"1": "x" * 1019})

    assert refused.code == 63021
    assert len(longest.body) == 1024
    assert [m["sid"] for m in fake.messages] == [longest.sid]


@pytest.mark.parametrize(
    "variables",
    [
        "{'1': 'Rosa'}",
        '{"1": "Rosa"',
        '["Rosa"]',
        '{"name": "Rosa"}',
        '{"1": ""}',
        '{"1": null}',
        '{"1": 5}',
    ],
)
def test_invalid_content_variables_are_rejected_with_21656(
    fake: FakeTwilio, sdk: Any, variables: str
) -> None:
    fake.add_content(CONTENT, "Hola {{1}}")

    refused = _refused(lambda: _template(sdk, variables))

    assert refused.code == 21656
    assert "The Content Variables parameter is invalid." in refused.msg
    assert fake.messages == []


@pytest.mark.parametrize("sid", [CONTENT, "HX123", "MG" + "0123456789abcdef" * 2])
def test_unknown_or_malformed_content_sid_is_rejected_with_21655(
    fake: FakeTwilio, sdk: Any, sid: str
) -> None:
    fake.add_content("HX" + "f" * 32, "Hola {{1}}")

    refused = _refused(
        lambda: sdk.messages.create(
            to=WA_TO, from_=WA_FROM, content_sid=sid, content_variables='{"1": "Rosa"}'
        )
    )

    assert refused.code == 21655
    assert "The ContentSid is Invalid" in refused.msg
    assert fake.messages == []


@pytest.mark.parametrize(
    ("variables", "fields", "code"),
    [
        ({"1": "Rosa"}, {}, 63028),  # {{2}} left without a value
        ({"1": "Rosa", "2": "lavadora", "3": "extra"}, {}, 63028),
        ({"1": "Rosa", "2": "lavadora"}, {"body": "Hola"}, 35127),
    ],
)
def test_content_that_does_not_fit_the_template_is_rejected(
    fake: FakeTwilio, sdk: Any, variables: dict[str, str], fields: dict[str, Any], code: int
) -> None:
    fake.add_content(CONTENT, TEMPLATE)

    assert _refused(lambda: _template(sdk, variables, **fields)).code == code
    assert fake.messages == []


def test_content_variables_need_a_content_sid(fake: FakeTwilio, sdk: Any) -> None:
    fake.customer_wrote(WA_TO)
    refused = _refused(
        lambda: _send(sdk, to=WA_TO, from_=WA_FROM, content_variables='{"1": "Rosa"}')
    )
    assert refused.code == 21654


@pytest.mark.parametrize(
    ("to", "from_", "code", "text"),
    [
        (WA_TO, FROM, 63007, "Twilio could not find a Channel with the specified From address"),
        (WA_TO, "whatsapp:14155238886", 63007, "could not find a Channel"),
        (TO, WA_FROM, 63003, "Channel could not find To address"),
        ("whatsapp:987654321", WA_FROM, 21211, "The 'To' number whatsapp:987654321 is not"),
    ],
)
def test_whatsapp_addresses_must_match_on_both_sides(
    fake: FakeTwilio, sdk: Any, to: str, from_: str, code: int, text: str
) -> None:
    fake.customer_wrote(CUSTOMER)
    fake.add_content(CONTENT, "Hola")

    for send in (
        lambda: _send(sdk, to=to, from_=from_),
        lambda: _template(sdk, {}, to, from_=from_),
    ):
        refused = _refused(send)
        assert (refused.code, text in refused.msg) == (code, True)
    assert fake.messages == []


def test_free_form_through_a_messaging_service_follows_the_window(
    fake: FakeTwilio, sdk: Any
) -> None:
    assert _refused(lambda: _send(sdk, to=WA_TO, messaging_service_sid=SERVICE)).code == 63016
    fake.customer_wrote(WA_TO)
    message = _send(sdk, to=WA_TO, messaging_service_sid=SERVICE)
    assert (message.status, message.from_, message.num_segments) == ("accepted", None, "0")


def test_whatsapp_messages_can_be_marked_read(fake: FakeTwilio, sdk: Any) -> None:
    fake.add_content(CONTENT, "Hola {{1}}")
    message = _template(sdk, {"1": "Rosa"})

    fake.set_status(message.sid, "read")

    fetched = sdk.messages(message.sid).fetch()
    assert (fetched.status, fetched.body) == ("read", "Hola Rosa")
    assert fetched.date_sent is not None


def test_whatsapp_helpers_refuse_what_twilio_would_not_have() -> None:
    fake = FakeTwilio()
    with pytest.raises(ValueError):
        fake.add_content("HX123", "Hola")
    with pytest.raises(ValueError):
        fake.customer_wrote("whatsapp:987654321")
