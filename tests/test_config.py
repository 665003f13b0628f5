"""Configuration: file, environment, defaults, and one clear line for every bad value."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import time
from pathlib import Path

import pytest

from scheduler.config import ConfigError, defaults, load_config, parse_window

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ=environ or {})
    return str(caught.value)


def test_defaults_match_the_contract() -> None:
    config = defaults()
    assert config.database.url == "sqlite:///instance/postventa.db"
    assert config.business.country == "PE"
    assert config.business.timezone == "America/Lima"
    assert str(config.business.send_window) == "09:00-20:00"
    assert config.business.send_days == ("mon", "tue", "wed", "thu", "fri", "sat")
    assert config.sms.transport == "outbox" and config.email.transport == "outbox"
    assert config.twilio.api_base_url == "https://api.twilio.com"
    assert (config.worker.tick_seconds, config.worker.batch_size) == (30, 1000)
    assert (config.worker.concurrency, config.worker.max_attempts) == (8, 5)
    assert config.cases.first_response_hours == 4


def test_example_file_documents_every_key_with_its_default() -> None:
    example = REPO / "config.example.toml"
    raw = tomllib.loads(example.read_text(encoding="utf-8"))
    config = defaults()
    for section in dataclasses.fields(config):
        if section.name == "source":
            continue
        keys = {f.name for f in dataclasses.fields(getattr(config, section.name))}
        table = raw["email"]["inbound"] if section.name == "email_inbound" else raw[section.name]
        tables = {"inbound"} if section.name == "email" else set()  # [email.inbound] is its own
        assert set(table) - tables == keys, section.name
    loaded = load_config(example, environ={})
    assert dataclasses.replace(loaded, source="") == dataclasses.replace(config, source="")


def test_file_values_are_read(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[business]
name = "Ferretería Lucho"
timezone = "Europe/Madrid"
country = "es"
send_window = "10:30-19:00"
send_days = ["fri", "mon"]
public_url = "https://postventa.example.com/"

[worker]
batch_size = 50
""",
        ),
        environ={},
    )
    assert config.business.name == "Ferretería Lucho"
    assert config.business.tz.key == "Europe/Madrid"
    assert config.business.country == "ES"
    assert config.business.send_window.start == time(10, 30)
    assert config.business.send_days == ("mon", "fri")
    assert config.business.public_url == "https://postventa.example.com"
    assert config.worker.batch_size == 50
    assert config.worker.tick_seconds == 30


def test_environment_overrides_secrets_and_database(tmp_path: Path) -> None:
    path = write(tmp_path, '[twilio]\nauth_token = "from-file"\n')
    config = load_config(
        path,
        environ={
            "POSTVENTA_DATABASE_URL": "postgresql://app@db.internal/postventa",
            "POSTVENTA_SECRET_KEY": "s3cret",
            "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
            "TWILIO_AUTH_TOKEN": "from-env",
            "POSTVENTA_SMTP_PASSWORD": "mail-pass",
        },
    )
    assert config.database.url == "postgresql+psycopg://app@db.internal/postventa"
    assert config.web.secret_key == "s3cret"
    assert config.twilio.account_sid == "AC" + "a" * 32
    assert config.twilio.auth_token == "from-env"
    assert config.email.smtp_password == "mail-pass"


def test_shop_secrets_come_from_the_file_or_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[shops]\nshopify_secret = "from-file"\nwoocommerce_secret = "w"\n')
    assert load_config(path, environ={}).shops.shopify_secret == "from-file"
    config = load_config(
        path,
        environ={"POSTVENTA_SHOPIFY_SECRET": "shp", "POSTVENTA_WOOCOMMERCE_SECRET": "wc"},
    )
    assert (config.shops.shopify_secret, config.shops.woocommerce_secret) == ("shp", "wc")
    assert defaults().shops.shopify_secret == defaults().shops.woocommerce_secret == ""
    assert "unknown key shops.shopify" in error_for(tmp_path, '[shops]\nshopify = "x"\n')


def test_lookup_order_explicit_then_variable_then_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}).source == "built-in defaults"
    (tmp_path / "config.toml").write_text('[business]\nname = "Local"\n')
    assert load_config(environ={}).business.name == "Local"
    other = tmp_path / "other.toml"
    other.write_text('[business]\nname = "From variable"\n')
    assert load_config(environ={"POSTVENTA_CONFIG": str(other)}).business.name == "From variable"
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[business]\nname = "Explicit"\n')
    chosen = load_config(explicit, environ={"POSTVENTA_CONFIG": str(other)})
    assert chosen.business.name == "Explicit"


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.toml: configuration file not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_invalid_toml_names_the_file_and_line(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[business]\nname = \n")
    assert message.startswith(f"{tmp_path / 'config.toml'}: not valid TOML")
    assert "line 2" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[business]\nnmae = 'x'\n", "unknown key business.nmae"),
        ("[bussiness]\nname = 'x'\n", "unknown section [bussiness]"),
        ("[business]\ntimezone = 'America/Lmia'\n", "business.timezone 'America/Lmia': unknown"),
        ("[business]\nsend_window = '20:00-09:00'\n", "business.send_window '20:00-09:00': start"),
        ("[business]\nsend_window = '9-5'\n", "business.send_window '9-5': expected HH:MM-HH:MM"),
        ("[business]\nsend_window = '09:00-25:00'\n", "business.send_window '09:00-25:00': not"),
        ("[business]\nsend_days = ['mon', 'funday']\n", "business.send_days ['mon', 'funday']"),
        ("[business]\nsend_days = []\n", "business.send_days []: expected a non-empty list"),
        ("[business]\ncountry = 'XX'\n", "business.country 'XX': unknown ISO 3166"),
        ("[business]\nlocale = 'fr'\n", "business.locale 'fr': must be one of: es, en"),
        ("[business]\npublic_url = 'example.com'\n", "business.public_url 'example.com': expected"),
        ("[twilio]\nfrom_number = '5550006'\n", "twilio.from_number '5550006': expected an E.164"),
        ("[twilio]\nfrom_number = '+1 500 555 0006'\n", "twilio.from_number '+1 500 555 0006'"),
        ("[twilio]\naccount_sid = 'ACxyz'\n", "twilio.account_sid 'ACxyz': expected"),
        ("[twilio]\napi_base_url = 'ftp://x'\n", "twilio.api_base_url 'ftp://x': expected"),
        ("[database]\nurl = 'mysql://db/x'\n", "database.url 'mysql://db/x': unsupported database"),
        ("[database]\nurl = 'not a url'\n", "database.url 'not a url': not a database URL"),
        ("[database]\nurl = 'postgresql://host'\n", "database.url 'postgresql://host': a Postgre"),
        ("[database]\nurl = 'sqlite://'\n", "database.url 'sqlite://': an SQLite URL needs"),
        ("[worker]\ntick_seconds = '30'\n", "worker.tick_seconds '30': expected a whole number"),
        ("[worker]\nconcurrency = 0\n", "worker.concurrency 0: must be between 1 and 256"),
        ("[worker]\nmax_attempts = true\n", "worker.max_attempts True: expected a whole number"),
        ("[email]\nsmtp_port = 70000\n", "email.smtp_port 70000: must be between 1 and 65535"),
        ("[email]\nstarttls = 'yes'\n", "email.starttls 'yes': expected true or false"),
        ("[email]\nfrom_address = 'shop@'\n", "email.from_address 'shop@'"),
        ("[cases]\nfirst_response_hours = 0\n", "cases.first_response_hours 0: expected a number"),
        ("business = 3\n", "business must be a table"),
    ],
)
def test_bad_value_fails_with_one_line_naming_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = error_for(tmp_path, text)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "config.toml") + ": ")
    assert expected in message


def test_every_problem_is_reported_each_on_its_own_line(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[business]\ntimezone = 'Mars/Base'\nsend_window = '9-5'\n")
    lines = message.splitlines()
    assert len(lines) == 2
    assert "business.timezone" in lines[0] and "business.send_window" in lines[1]


def test_bad_environment_value_names_the_variable_and_hides_secrets(tmp_path: Path) -> None:
    message = error_for(tmp_path, "", {"TWILIO_ACCOUNT_SID": "not-a-sid"})
    assert message.startswith("environment TWILIO_ACCOUNT_SID: twilio.account_sid (secret)")
    assert "not-a-sid" not in message
    message = error_for(tmp_path, "", {"POSTVENTA_DATABASE_URL": "oracle://x/y"})
    assert "environment POSTVENTA_DATABASE_URL: database.url 'oracle://x/y'" in message


def test_twilio_transport_needs_credentials_and_a_sender(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[sms]\ntransport = 'twilio'\n")
    assert "twilio.account_sid is required when sms.transport" in message
    assert "twilio.auth_token is required" in message
    assert "twilio.from_number or twilio.messaging_service_sid is required" in message
    config = load_config(
        write(
            tmp_path,
            f"""
[sms]
transport = "twilio"
[twilio]
account_sid = "AC{"0" * 32}"
auth_token = "token"
messaging_service_sid = "MG{"1" * 32}"
""",
        ),
        environ={},
    )
    assert config.twilio.messaging_service_sid == "MG" + "1" * 32


def test_smtp_transport_needs_a_from_address(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[email]\ntransport = 'smtp'\n")
    assert 'email.from_address is required when email.transport = "smtp"' in message


def test_postgres_urls_always_use_psycopg(tmp_path: Path) -> None:
    for url in ("postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"):
        config = load_config(write(tmp_path, f"[database]\nurl = '{url}'\n"), environ={})
        assert config.database.url == "postgresql+psycopg://u@h/db"


def test_window_until_midnight_is_allowed() -> None:
    window = parse_window("18:00-24:00")
    assert window.start == time(18, 0) and window.end == time.max
    assert str(window) == "18:00-24:00"


def test_replace_validates_like_a_file() -> None:
    config = defaults().replace(business={"send_window": "08:00-21:00"})
    assert str(config.business.send_window) == "08:00-21:00"
    with pytest.raises(ConfigError, match="business.send_window '21:00-08:00'"):
        defaults().replace(business={"send_window": "21:00-08:00"})
