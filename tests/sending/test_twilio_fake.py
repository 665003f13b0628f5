"""The Twilio fake, driven by the real twilio SDK: what the SMS transport will see in production."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from twilio.base.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    TwilioException,
    TwilioRestException,
)
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from tests.twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Respond

TO = "+34600111222"
OTHER = "+34600333444"
FROM = "+15005550006"
SERVICE = "MG" + "ab" * 16


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
