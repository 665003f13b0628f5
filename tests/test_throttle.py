"""Slowing down password guesses without letting a stranger lock the owner out: per account and
address, per address, and a slower limit per account that guesses from many addresses meet."""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time

from scheduler import accounts
from scheduler.accounts import (
    FREE_FAILURES_PER_ACCOUNT,
    after_failure,
    login_keys,
    wait_for,
)
from scheduler.config import Config
from scheduler.models import User
from tests.browsing import csrf_token, log_in
from tests.conftest import OWNER, EnglishBrowser

START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
STRANGER, OWNER_ELSEWHERE = "198.51.100.7", "203.0.113.9"


def _browser(app: Flask, address: str) -> FlaskClient:
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def _guess(app: Flask, address: str, email: str = OWNER[0]) -> int:
    return log_in(_browser(app, address), email, "a wrong guess").status_code


# The policy as pure functions: attackers who try again the moment they may.


def _attack(addresses: int, hours: int) -> tuple[int, int]:
    """Failed guesses on one account from `addresses` addresses over `hours`, and the most
    failures the account held at once."""
    counts: dict[str, tuple[int, datetime]] = {}
    ready = [(START, f"198.51.{n // 250}.{n % 250}") for n in range(addresses)]
    end, guesses, most = START + timedelta(hours=hours), 0, 0
    while ready[0][0] < end:
        now, address = heapq.heappop(ready)
        keys = login_keys(OWNER[0], address)
        wait = max(wait_for(key, *counts.get(key, (0, now)), now) for key in keys)
        if wait == 0:
            guesses += 1
            for key in keys:
                counts[key] = after_failure(key, *counts.get(key, (0, now)), now)
            most = max(most, counts[f"account:{OWNER[0]}"][0])
        heapq.heappush(ready, (now + timedelta(seconds=math.ceil(wait)), address))
    return guesses, most


def test_one_address_never_makes_the_owner_wait_anywhere_else() -> None:
    guesses, most = _attack(addresses=1, hours=7 * 24)
    assert guesses < 4 * 7 * 24 + 15  # four an hour, after the first few
    assert most < FREE_FAILURES_PER_ACCOUNT  # the account-wide limit is never reached


def test_guesses_spread_over_many_addresses_get_six_an_hour_after_fifty() -> None:
    guesses, most = _attack(addresses=200, hours=24)
    assert most == FREE_FAILURES_PER_ACCOUNT
    assert FREE_FAILURES_PER_ACCOUNT + 6 * 23 <= guesses <= FREE_FAILURES_PER_ACCOUNT + 6 * 24


def test_an_account_forgives_one_failure_every_ten_minutes() -> None:
    key = f"account:{OWNER[0]}"
    assert wait_for(key, 49, START, START) == 0
    assert wait_for(key, 50, START, START) == 600
    assert wait_for(key, 50, START, START + timedelta(minutes=4)) == 360
    assert wait_for(key, 50, START, START + timedelta(minutes=10)) == 0
    # The failure after one was forgiven keeps the next forgiving on time.
    held, since = after_failure(key, 50, START, START + timedelta(minutes=15))
    assert (held, since) == (50, START + timedelta(minutes=10))
    assert after_failure(key, 2, START, START + timedelta(hours=1)) == (
        1,
        START + timedelta(hours=1),
    )


def test_an_address_alone_waits_from_its_twenty_first_failure() -> None:
    assert wait_for(f"ip:{STRANGER}", 19, START, START) == 0
    assert wait_for(f"ip:{STRANGER}", 20, START, START) == 1
    assert wait_for(f"pair:{STRANGER} {OWNER[0]}", 3, START, START) == 1


def test_an_address_is_cut_to_a_bounded_key() -> None:
    keys = login_keys(OWNER[0], "x" * 5000)
    assert max(len(key) for key in keys) < 400 and keys == sorted(keys)


# Through the log-in page.


def test_a_strangers_guesses_do_not_slow_the_owner_logging_in_elsewhere(
    app: Flask, owner: User
) -> None:
    with freeze_time(START):
        for _ in range(3):
            assert _guess(app, STRANGER) == 401
        assert _guess(app, STRANGER) == 429  # the stranger waits...
        assert log_in(_browser(app, OWNER_ELSEWHERE), *OWNER).status_code == 302  # not the owner
        assert log_in(_browser(app, STRANGER), *OWNER).status_code == 429  # that address does


def test_guesses_from_many_addresses_make_even_the_right_password_wait(
    app: Flask, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounts, "FREE_FAILURES_PER_ACCOUNT", 6)  # 50 guesses take a minute
    with freeze_time(START) as clock:
        for n in range(6):
            assert _guess(app, f"198.51.100.{n // 3}") == 401  # three free tries per address
        refused = log_in(_browser(app, OWNER_ELSEWHERE), *OWNER)
        assert refused.status_code == 429
        assert "Try again in 600 s" in refused.get_data(as_text=True)
        clock.tick(timedelta(minutes=10))
        assert log_in(_browser(app, OWNER_ELSEWHERE), *OWNER).status_code == 302
        # A success does not reset the account's count: guessers cannot wait for the owner.
        assert _guess(app, "198.51.100.200") == 401
        assert log_in(_browser(app, OWNER_ELSEWHERE), *OWNER).status_code == 429


def test_an_address_alone_is_slowed_after_its_free_failures(
    app: Flask, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounts, "FREE_FAILURES_PER_ADDRESS", 5)  # 20 guesses take a while
    with freeze_time(START):
        for n in range(5):
            assert _guess(app, STRANGER, f"nobody{n}@example.com") == 401
        assert _guess(app, STRANGER, "nobody-else@example.com") == 429
        assert _guess(app, OWNER_ELSEWHERE, "nobody-else@example.com") == 401


def test_parallel_first_guesses_take_turns(app: Flask, owner: User) -> None:
    with freeze_time(START):
        browsers = [_browser(app, STRANGER) for _ in range(8)]
        tokens = [csrf_token(browser) for browser in browsers]
        start, answers, lock = threading.Barrier(len(browsers)), [], threading.Lock()

        def guess(browser: FlaskClient, token: str) -> None:
            start.wait()
            data = {"email": OWNER[0], "password": "a wrong guess", "csrf_token": token}
            status = browser.post("/login", data=data).status_code
            with lock:
                answers.append(status)

        threads = [
            threading.Thread(target=guess, args=pair) for pair in zip(browsers, tokens, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(answers) == [401] * 3 + [429] * 5  # three checked, one at a time


@pytest.fixture
def proxied_app(config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    from web import create_app

    monkeypatch.chdir(tmp_path)
    flask_app = create_app(config.replace(web={"proxies": 1}))
    flask_app.config["TESTING"] = True
    flask_app.test_client_class = EnglishBrowser
    yield flask_app
    flask_app.extensions["postventa"].engine.dispose()


def test_behind_a_proxy_the_forwarded_address_is_the_one_counted(
    proxied_app: Flask, owner: User
) -> None:
    def behind_proxy(address: str) -> FlaskClient:
        browser = proxied_app.test_client()
        browser.environ_base["HTTP_X_FORWARDED_FOR"] = address
        return browser

    with freeze_time(START):
        for _ in range(3):
            assert log_in(behind_proxy(STRANGER), OWNER[0], "a wrong guess").status_code == 401
        assert log_in(behind_proxy(STRANGER), *OWNER).status_code == 429
        assert log_in(behind_proxy(OWNER_ELSEWHERE), *OWNER).status_code == 302
