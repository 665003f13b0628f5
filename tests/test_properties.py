"""Whatever a hostile user sends, nothing crashes and every refusal says where: properties over
generated input (hypothesis) for the five edges a stranger controls.

The reply classifier reads any text; the CSV reader checks any bytes row by row; the config
loader loads any TOML or names the key; the phone normaliser gives E.164 or refuses by name;
POST /api/sales stores a sale or answers 4xx naming the field. Runs are repeatable
(`derandomize`) and leave no example database behind (`database=None`).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.addresses import normalise_email, normalise_phone
from scheduler.config import (
    ENV_OVERRIDES,
    SECTION_NAMES,
    ConfigError,
    as_raw,
    defaults,
    load_config,
)
from scheduler.defaults import install_defaults
from scheduler.listening.classify import (
    LUKEWARM,
    NEGATIVE_EMOJI,
    PHRASES,
    POSITIVE_EMOJI,
    Label,
    classify,
)
from scheduler.listening.classify import NEGATIVE as NEGATIVE_WORDS
from scheduler.listening.classify import NEUTRAL as NEUTRAL_WORDS
from scheduler.listening.classify import POSITIVE as POSITIVE_WORDS
from scheduler.listening.classify import QUESTION as QUESTION_WORDS
from scheduler.listening.keywords import _APOSTROPHES, KEYWORDS, Intent, fold
from scheduler.models import Customer, Sale
from scheduler.sending.columns import column_key
from scheduler.sending.csv_import import (
    ImportCheck,
    UnusableFile,
    check_sales_csv,
    decode,
    import_sales,
)
from scheduler.sending.intake import FIELDS
from tests.factories import NOW

CONFIG = defaults()

# Pure functions: cheap, so many examples. Same examples on every run, none stored on disk.
PURE = settings(max_examples=150, deadline=None, derandomize=True, database=None)
FILES = settings(PURE, max_examples=80)  # a table or a config file each: ten times dearer
# Database-backed: few examples, one app and one database per test for all of them. The
# function-scoped fixtures (`session`, `client`, `token`) are built once and shared by every
# example on purpose: each example reads the state it needs before it acts (was this external
# id stored already?), so what an earlier example left behind cannot make it pass or fail.
# No shrinking there: every try is a round of requests, and the failing input is printed as
# it was found.
SHARED_FIXTURES = [HealthCheck.function_scoped_fixture]
FOUND = tuple(phase for phase in Phase if phase is not Phase.shrink)
DATABASE = settings(PURE, max_examples=20, suppress_health_check=SHARED_FIXTURES, phases=FOUND)

# Any character, lone UTF-16 halves (JSON can carry them) included.
ANY_CHAR = st.characters() | st.integers(0xD800, 0xDFFF).map(chr)
ANY_TEXT = st.text(ANY_CHAR, max_size=200)
PRINTABLE = st.characters(exclude_categories=["Cc", "Cs"])
EMOJI = NEGATIVE_EMOJI + POSITIVE_EMOJI + "🙏🛑⛔❌👋🏽\ufe0f\u200d"
HUGE_TEXT = st.builds(
    lambda piece, times: piece * times, st.text(min_size=1, max_size=30), st.integers(1, 300)
)


# --- 1. the reply classifier --------------------------------------------------------------------

A_REPLY = st.one_of(
    ANY_TEXT,
    st.text(st.sampled_from(EMOJI + " \t\n\x00\x07\x1b!?¿¡.,"), max_size=60),
    HUGE_TEXT,  # up to some 9 000 characters
)


@PURE
@given(A_REPLY)
def test_folding_takes_off_every_combining_mark_and_nothing_else(text: str) -> None:
    """`fold` deletes the marks with one table: the same as asking of each character."""
    plain = unicodedata.normalize("NFKD", text.casefold().translate(_APOSTROPHES))
    by_hand = "".join(c for c in plain if not unicodedata.combining(c))
    assert fold(text) == " ".join(by_hand.split()).strip(" .,;:!¡?¿\"'()[]-_*~")


@PURE
@given(A_REPLY)
def test_any_reply_gets_a_reading_and_doubt_goes_to_a_person(text: str) -> None:
    reading = classify(text)
    assert reading.text == text and reading.label in Label
    assert reading.score is None or 0 <= reading.score <= 10
    assert 0 < reading.confidence <= 1
    json.dumps(reading.as_dict())  # what `postventa classify --json` prints
    # "When in doubt, a person reads it": the machine keeps only praise, high scores, plain
    # acknowledgements and bare consent keywords.
    if not reading.needs_human:
        assert reading.label not in (Label.OBJECTION, Label.QUESTION), reading
        assert reading.score is None or reading.score > 6, reading
        assert reading.confidence >= 0.7, reading


STOP_WORDS = sorted(word for word, intent in KEYWORDS.items() if intent is Intent.OPT_OUT)
# Emoji, punctuation and spaces: nothing that makes a word ("_" would glue two STOPs into one).
AROUND = [*EMOJI, *"!¡?¿.,;:…-*~()\"'", " ", "\t", "\n", "❤️", "👋🏽"]


@st.composite
def in_any_case(draw: st.DrawFn, word: str) -> str:
    """`word` with each letter in either case, and some vowels with an accent."""
    letters = []
    for char in word:
        char = char.upper() if draw(st.booleans()) else char
        letters.append(char + "\u0301" if char in "aeiouAEIOU" and draw(st.booleans()) else char)
    return "".join(letters)


@st.composite
def stop_messages(draw: st.DrawFn) -> str:
    """A stop keyword, repeated, among emoji and punctuation: "🙏 BAJA!!! baja 😤"."""
    keyword = draw(st.sampled_from(STOP_WORDS))
    times = draw(st.integers(1, 8 // len(keyword.split())))  # longer than 8 words: a sentence
    around = st.lists(st.sampled_from(AROUND), max_size=4).map("".join)
    between = st.lists(st.sampled_from(AROUND), min_size=1, max_size=4).map("".join)
    parts = [draw(around)]
    for index in range(times):
        parts += [draw(in_any_case(keyword)), draw(between if index < times - 1 else around)]
    return "".join(parts)


@PURE
@given(stop_messages())
def test_a_stop_keyword_among_emoji_repeats_and_accents_always_opts_out(text: str) -> None:
    reading = classify(text)
    assert (reading.label, reading.needs_human) == (Label.OPT_OUT, False), reading


# The words and phrases the classifier knows, and some it should not mind.
VOCABULARY = sorted(
    {*NEGATIVE_WORDS.split(), *POSITIVE_WORDS.split(), *QUESTION_WORDS.split()}
    | {*NEUTRAL_WORDS.split(), *LUKEWARM, *KEYWORDS}
    | {phrase for phrases in PHRASES.values() for phrase in phrases}
    | {"atención", "está", "recibí", "aún", "Begoña", "hola", "graciasss", *EMOJI}
)
# What turns a reading around, drawn as often as the rest: ratings, negation, contrast.
TURNS = (
    "9|10/10|un 3|5 estrellas|cinco estrellas|8 de 10|a solid 9|⭐⭐⭐|"
    "pero|but|no|not|muy|nunca|?|¿|!|.|,"
).split("|")
SPACE = st.text(st.sampled_from(" \t\n\r\u00a0\u3000"), min_size=1, max_size=3)
CASES: list[Callable[[str], str]] = [str.upper, str.lower, str.swapcase, str.title]


@PURE
@given(
    st.lists(
        st.sampled_from(VOCABULARY)
        | st.sampled_from(TURNS)
        | st.text(st.characters(codec="latin-1"), max_size=8),
        min_size=1,
        max_size=12,
    ),
    st.data(),
)
def test_letter_case_and_spacing_do_not_change_the_reading(
    words: list[str], data: st.DataObject
) -> None:
    written = data.draw(SPACE) + "".join(word + data.draw(SPACE) for word in words)
    shouted = data.draw(st.sampled_from(CASES))(written)
    plain, other = classify(" ".join(words)), classify(shouted)
    assert dataclasses.replace(other, text="") == dataclasses.replace(plain, text=""), shouted


# --- 2. the CSV reader --------------------------------------------------------------------------

REQUIRED = ["external_id", "sold_at", "customer_name", "phone"]
VALID_CELLS: dict[str, st.SearchStrategy[str]] = {
    "sold_at": st.sampled_from(
        ["2026-11-20T10:00", "2026-11-23 09:30", "2026-11-22T21:15:00-05:00", "2024-02-29"]
    ),
    "customer_name": st.sampled_from(["Rosa Quispe", "Begoña Núñez", 'Ana "la, jefa"', "李雷"]),
    "phone": st.from_regex(r"9[0-9]{8}", fullmatch=True),  # a mobile in Peru
    "email": st.sampled_from(["", "ana@example.pe", "LUIS@Example.com"]),
    "locale": st.sampled_from(["", "es", "en"]),
    "timezone": st.sampled_from(["", "America/Lima", "Europe/Madrid"]),
    "product_sku": st.sampled_from(["", "LAV-9", "TV;1"]),
    "product_name": st.sampled_from(["", "Lavadora", 'Tele 55" 4K']),
    # One value each besides blank: two rows giving one SKU different values are refused.
    "category": st.sampled_from(["", "Línea blanca; hogar"]),
    "renewal_days": st.sampled_from(["", " 365 "]),
    "amount": st.sampled_from(["", "1899.90", "0", " 12 "]),
    "currency": st.sampled_from(["", "PEN", "USD"]),
    "whatsapp_opt_in": st.sampled_from(["", "no", "sí", "Yes", "x", "FALSE"]),
}
# Columns of the shop's own, kept as attributes: any printable text, quotes, delimiters and
# line breaks included (a spreadsheet quotes them).
CSV_CHAR = PRINTABLE.filter(lambda char: char not in "\ufeff\ufffd")
ATTRIBUTE_CELL = st.text(CSV_CHAR | st.sampled_from('\t\n\r",;'), max_size=60)
EXTERNAL_IDS = st.from_regex(r"[A-Z]{1,3}-[0-9]{1,5}", fullmatch=True)
# Control characters that strip() leaves in place (it takes \x1c-\x1f off the ends).
POISON = st.sampled_from(["\x00", "\x07", "\x08", "\x1b", "\x7f"])


def _line_after(text: str) -> int:
    """The line a CSV reader is on once it has read `text`, as `csv.reader.line_num` counts."""
    return len(io.StringIO(text, newline="").readlines())


@dataclasses.dataclass
class Table:
    """A generated file and what each of its rows should come to."""

    text: str
    data: bytes
    columns: set[str]  # the header's names as the reader takes them
    good: dict[int, str]  # line -> external id, rows that must be accepted
    bad: dict[int, str]  # line -> the field (or "" for the row's shape) a problem must name


@st.composite
def tables(draw: st.DrawFn) -> Table:
    """A spreadsheet's export: the required columns and some others in any order, good rows,
    rows missing or adding a field, rows with a control character or an overlong value."""
    optional = [name for name in FIELDS if name not in REQUIRED]
    extra = draw(st.lists(st.text(CSV_CHAR, min_size=1, max_size=12).filter(str.strip), max_size=3))
    names = REQUIRED + draw(st.lists(st.sampled_from(optional), unique=True, max_size=4))
    names += [name for name in extra if column_key(name) not in FIELDS]
    header = draw(st.permutations(names))
    if len({column_key(name) for name in header}) < len(header):
        # The same column twice, as the reader tells columns apart ("0" and "0:"): refused.
        header = [name for name in header if name in FIELDS]
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    out = io.StringIO()
    # Line breaks inside a cell are quoted as spreadsheets do (Python's writer would leave a
    # lone "\r" bare unless the line ends in "\r\n" or every field is quoted).
    if draw(st.booleans()):
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    else:
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    table = Table("", b"", {name.strip().lower() for name in header}, {}, {})
    for external_id in draw(st.lists(EXTERNAL_IDS, unique=True, min_size=1, max_size=6)):
        row = {"external_id": external_id}
        for name in header:
            if name not in row:
                row[name] = draw(VALID_CELLS.get(name, ATTRIBUTE_CELL))
        values = [row[name] for name in header]
        kind = draw(st.sampled_from(["good", "good", "short", "long", "poisoned", "overlong"]))
        blamed = ""
        if kind == "short":
            values.pop(draw(st.integers(0, len(values) - 1)))
        elif kind == "long":
            values.insert(draw(st.integers(0, len(values))), draw(ATTRIBUTE_CELL))
        elif kind == "poisoned":
            blamed = draw(st.sampled_from(header))
            cell = values[header.index(blamed)]
            cut = draw(st.integers(0, len(cell)))
            values[header.index(blamed)] = cell[:cut] + draw(POISON) + cell[cut:]
        elif kind == "overlong":
            blamed = draw(st.sampled_from(["external_id", "customer_name"]))
            values[header.index(blamed)] = "Ñ" * draw(st.integers(201, 5_000))
        writer.writerow(values)
        line = _line_after(out.getvalue())
        if kind == "good":
            table.good[line] = external_id
        else:
            table.bad[line] = blamed
    table.text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    try:
        table.data = table.text.encode(encoding)
    except UnicodeEncodeError:  # not every text has a Windows-1252 spelling
        table.data = table.text.encode("utf-8")
    return table


def _checked_or_refused(data: bytes) -> ImportCheck | None:
    """The check of a file, with what holds for any check; None if the file was refused,
    which must be in one line of words."""
    text, _encoding = decode(data)
    try:
        check = check_sales_csv(text, CONFIG, now=NOW)
    except UnusableFile as refused:
        message = str(refused)
        assert message.strip() and "\n" not in message and "\x00" not in message, message
        return None
    accepted = [line for line, _sale in check.sales]
    assert len(set(accepted)) == len(accepted)
    assert not set(accepted) & set(check.rejected_lines)
    assert check.rows == len(accepted) + len(check.rejected_lines)  # every row: kept or named
    for problem in check.problems:
        assert problem.line >= 2 and problem.message.strip(), problem
    return check


HEADER = "external_id,sold_at,customer_name,phone,notes\n"


@PURE
@given(st.binary(max_size=2_000) | st.binary(max_size=2_000).map(HEADER.encode().__add__))
def test_any_bytes_are_checked_or_refused_in_words(data: bytes) -> None:
    _checked_or_refused(data)


@FILES
@given(tables())
def test_every_row_is_kept_or_named_with_its_line_and_field(table: Table) -> None:
    check = _checked_or_refused(table.data)
    assert check is not None
    if decode(table.data)[0] != table.text:
        return  # Windows-1252 bytes that happen to be UTF-8 as well: read as such, rightly
    assert {line: sale.external_id for line, sale in check.sales} == table.good
    named = {(problem.line, problem.field) for problem in check.problems}
    for line, field in table.bad.items():
        assert (line, field.strip().lower()) in named, (line, field, check.problems)
    assert {field for _line, field in named} <= table.columns | {""}


@settings(PURE, max_examples=10)  # 130 KB a file
@given(before=st.integers(0, 5), size=st.integers(131_073, 140_000), quoted=st.booleans())
def test_a_cell_beyond_what_csv_reads_refuses_the_file_at_its_line(
    before: int, size: int, quoted: bool
) -> None:
    rows = [f"H-{n},2026-11-20T10:00,Rosa,98765432{n},ok\n" for n in range(before)]
    cell = f'"{"x" * size}"' if quoted else "x" * size
    rows.append(f"H-9,2026-11-20,Rosa,987654329,{cell}\n")
    rows.append("H-10,2026-11-20,Rosa,987654320,ok\n")  # the rows after it are never read
    text = HEADER + "".join(rows)
    with pytest.raises(UnusableFile) as refused:
        check_sales_csv(text, CONFIG, now=NOW)
    assert str(refused.value) == f"line {before + 2}: field larger than field limit (131072)"


@pytest.fixture
def cadence(session: Session) -> None:
    install_defaults(session, NOW)
    session.commit()


@DATABASE
@given(table=tables())
def test_the_import_stores_exactly_the_rows_the_dry_run_accepted(
    table: Table, session: Session, cadence: None
) -> None:
    session.rollback()
    stored_before = set(session.scalars(select(Sale.external_id)))
    check = _checked_or_refused(table.data)  # the dry run, as the page and the CLI show it
    assert check is not None
    accepted = {sale.external_id for _line, sale in check.sales}
    done = import_sales(session, check, config=CONFIG, now=NOW, actor="test")
    assert done.failure is None, done  # the database takes every row the check let through
    assert done.created == len(accepted - stored_before)
    assert done.existing == len(accepted & stored_before)
    session.rollback()
    stored = set(session.scalars(select(Sale.external_id)))
    assert stored == stored_before | accepted  # and nothing else: the refused rows are not


# --- 3. the config loader -----------------------------------------------------------------------

DEFAULT_RAW = {
    (SECTION_NAMES[section.name], key.name): as_raw(
        getattr(getattr(CONFIG, section.name), key.name)
    )
    for section in dataclasses.fields(CONFIG)
    if section.name != "source"
    for key in dataclasses.fields(getattr(CONFIG, section.name))
}
KEYS = sorted(DEFAULT_RAW)
SECTIONS = sorted({section for section, _key in KEYS})
# Values nearly right for some key, or right for another one.
ODD_VALUES: list[Any] = (
    "09:00-20:00 20:00-09:00 09:00-24:00 America/Lima Mars/Base pe XX en twilio smtp all mon "
    "https://shop.example.pe/ http://[::1 http:// sqlite:// sqlite:///x.db postgres://u@h:port/db "
    "postgresql://u@h:99999999/db +15005550006 josé@example.pe"
).split()
ODD_VALUES += ["", " ", "+51 987 654 321", "Mi Tienda <ana@example.pe>", '"Q, R" <a@b.pe>', "<>"]
ODD_VALUES += ["AC" + "0" * 32, "MG" + "1" * 32]
ODD_VALUES += [["mon", "Mon"], [], ["ana@example.pe"], ["+51987654321"], {"mon": "09:00-18:00"}]
ODD_VALUES += [{"sat": ""}, {"fun": "1"}]
TOML_LEAVES = st.one_of(
    st.text(PRINTABLE | st.sampled_from("\x00\x1b\t\n\x7f"), max_size=60),
    st.sampled_from(ODD_VALUES),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-5, 70_000),
    st.floats(),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.dates(),
    st.times(),
)
TOML_VALUES = st.recursive(
    TOML_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def toml(value: Any) -> str:
    """`value` written as TOML (tomllib only reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # 1e+16, inf, -inf and nan are TOML as Python writes them
    if isinstance(value, str):
        escaped = (
            f"\\u{ord(char):04x}"
            if ord(char) < 0x20 or ord(char) == 0x7F or char in '"\\'
            else char
            for char in value
        )
        return '"' + "".join(escaped) + '"'
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml(name)} = {toml(item)}" for name, item in value.items()) + "}"


@dataclasses.dataclass
class ConfigDocument:
    text: str
    environ: dict[str, str]
    changed: set[str]  # "section.key" given a value other than its default, or unknown


@st.composite
def config_documents(draw: st.DrawFn) -> ConfigDocument:
    """A config.toml setting some keys to their defaults and others to anything; perhaps an
    unknown key, a section that is not a table or not ours, environment overrides."""
    tables: dict[str, dict[str, Any]] = {}
    changed: set[str] = set()
    for section, key in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=6)):
        default = DEFAULT_RAW[(section, key)]
        value = default if draw(st.booleans()) else draw(TOML_VALUES)
        tables.setdefault(section, {})[key] = value
        if type(value) is not type(default) or value != default:  # True == 1, 30.0 == 30
            changed.add(f"{section}.{key}")
    if draw(st.integers(0, 5)) == 0:
        section = draw(st.sampled_from(SECTIONS))
        unknown = draw(st.text(PRINTABLE, min_size=1, max_size=10))
        if (section, unknown) not in KEYS:
            tables.setdefault(section, {})[unknown] = draw(TOML_LEAVES)
            changed.add(f"unknown key {section}.{unknown}")
    lines = []  # keys outside any table come first in TOML
    if draw(st.integers(0, 5)) == 0:  # a top-level section as a plain value, tables within too
        section = draw(st.sampled_from([*(s for s in SECTIONS if "." not in s), "bussiness"]))
        for name in [name for name in tables if name.split(".")[0] == section]:
            tables.pop(name)
        changed = {n for n in changed if n.removeprefix("unknown key ").split(".")[0] != section}
        lines.append(f"{section} = {toml(draw(TOML_LEAVES))}")
        changed.add(f"{section} must be a table" if section in SECTIONS else f"[{section}]")
    for section, table in tables.items():
        lines.append(f"[{section}]")
        lines += [f"{toml(key)} = {toml(value)}" for key, value in table.items()]
    environ = draw(
        st.dictionaries(st.sampled_from(sorted(ENV_OVERRIDES)), st.text(max_size=40), max_size=2)
    )
    for variable, value in environ.items():
        section, key = ENV_OVERRIDES[variable]
        if value:  # an empty variable is not set
            changed.add(f"{section}.{key}")
    return ConfigDocument("\n".join(lines) + "\n", environ, changed)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file, rewritten by every example (module scope: hypothesis runs many per test)."""
    return tmp_path_factory.mktemp("config") / "config.toml"


@FILES
@given(document=config_documents())
def test_any_value_of_any_key_loads_or_is_named_with_its_key(
    document: ConfigDocument, config_path: Path
) -> None:
    config_path.write_text(document.text, encoding="utf-8")
    try:
        config = load_config(config_path, environ=document.environ)
    except ConfigError as error:
        sources = [f"{config_path}: ", *(f"environment {name}: " for name in document.environ)]
        for line in str(error).splitlines():
            assert any(line.startswith(source) for source in sources), line
            assert any(name in line for name in document.changed), (line, document.changed)
        return
    assert config.source == str(config_path)
    assert config.replace() == config  # what was loaded validates again as itself


@PURE
@given(content=st.text(max_size=400) | st.binary(max_size=400))
def test_any_file_content_loads_or_names_the_file(content: str | bytes, config_path: Path) -> None:
    if isinstance(content, str):
        config_path.write_text(content, encoding="utf-8")
    else:
        config_path.write_bytes(content)
    try:
        load_config(config_path, environ={})
    except ConfigError as error:
        assert str(error).startswith(f"{config_path}: "), error


# --- 4. the phone normaliser --------------------------------------------------------------------

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
EXAMPLES = {region: number for region in REGIONS if (number := phonenumbers.example_number(region))}
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
DIALLED = st.text(st.sampled_from("+0123456789 -.()/x#*٠١٢٣٤٥٦٧٨٩０１２３４５"), max_size=30)


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A region's example number as people write it, and the region it is local to."""
    region = draw(st.sampled_from(sorted(EXAMPLES)))
    number = EXAMPLES[region]
    formats = [
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.E164,
    ]
    written = phonenumbers.format_number(number, draw(st.sampled_from(formats)))
    separator = draw(st.sampled_from([" ", "-", ".", " - ", ""]))
    return written.replace(" ", separator), region


@PURE
@given(ANY_TEXT | DIALLED | HUGE_TEXT, st.sampled_from(REGIONS), st.sampled_from(REGIONS))
def test_any_phone_is_e164_or_refused_by_name(raw: str, region: str, elsewhere: str) -> None:
    try:
        number = normalise_phone(raw, region)
    except ValueError as refused:
        assert str(refused) == (
            f"{raw!r} is not a valid phone number (numbers without + are read as {region})"
        )
        return
    assert E164.fullmatch(number), number
    assert phonenumbers.is_valid_number(phonenumbers.parse(number))
    assert normalise_phone(number, elsewhere) == number  # idempotent, from any country


@PURE
@given(written_numbers(), st.sampled_from(REGIONS))
def test_a_number_written_as_its_country_writes_it_is_accepted(
    written: tuple[str, str], elsewhere: str
) -> None:
    raw, region = written
    number = normalise_phone(f" {raw} ", region)
    assert E164.fullmatch(number) and normalise_phone(number, elsewhere) == number


# --- 5. POST /api/sales -------------------------------------------------------------------------

# Where a field sits in the API's body.
BODY_PATHS = (
    "external_id sold_at customer customer.name customer.phone customer.email customer.locale "
    "customer.timezone product product.sku product.name amount currency attributes"
).split()
ODD_STRINGS = st.sampled_from(
    ["", " ", *"1e300 NaN -0 1_000 ١٢ 2026-11-23 9999-12-31 +51987654321 pe Mars/Base usd".split()]
    + ["0001-01-01T00:00:00+14:00", "2026-11-23T10:00:00-99:00"]
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**30, -(10**30), 2**64, -1, 0]),
    st.floats(),
    ANY_TEXT,
    HUGE_TEXT,
    st.emails(),
    ODD_STRINGS,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=10,
)


def _nested(depth: int) -> Any:
    value: Any = "fondo"
    for _ in range(depth):
        value = {"x": [value]}
    return value


class Removed:
    """The field left out of the body."""

    def __repr__(self) -> str:
        return "REMOVED"


REMOVED = Removed()


# What may come where a field was due: nothing, any type, odd text; one kind as often as another.
WRONG_VALUES = st.one_of(
    st.just(REMOVED),
    st.none(),
    st.booleans(),
    st.integers() | st.sampled_from([10**30, -(10**30), 2**64, -1]),
    st.floats(),
    ANY_TEXT | HUGE_TEXT | st.emails() | ODD_STRINGS,
    st.lists(JSON_VALUES, max_size=3),
    st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=3),
    st.builds(_nested, st.integers(5, 30)),  # {"x": [{"x": [...]}]}, 10 to 60 levels
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


# What a shop may keep with a sale: any JSON but NaN, infinity, control characters other than
# line breaks and tabs, and nesting beyond ten levels (an attribute's value is the first).
NAMES = st.text(PRINTABLE, max_size=20)
ATTRIBUTE_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(PRINTABLE | st.sampled_from("\t\n\r"))
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=8,
).filter(lambda value: _depth(value) <= 9)
ATTRIBUTES = st.dictionaries(NAMES, ATTRIBUTE_VALUES, max_size=4)


@st.composite
def valid_sales(draw: st.DrawFn) -> dict[str, Any]:
    """A body the API must take: any printable ids, names and SKUs up to their lengths, a date
    in the span at any UTC offset, an amount in range, attributes of any storable JSON."""
    sold_at = NOW - draw(st.timedeltas(timedelta(0), timedelta(days=3_000)))
    offset = timezone(timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60))))
    customer: dict[str, Any] = {
        "name": draw(st.text(PRINTABLE, min_size=1, max_size=200).filter(str.strip)),
        "phone": draw(st.from_regex(r"9[0-9]{8}", fullmatch=True)),  # a mobile in Peru
    }
    if draw(st.booleans()):
        customer["email"] = draw(st.sampled_from(["ana@example.pe", "Luis@Example.COM"]))
    if draw(st.booleans()):
        customer["locale"] = draw(st.sampled_from(["es", "en"]))
    return {
        "external_id": draw(st.text(PRINTABLE, min_size=1, max_size=100).filter(str.strip)),
        "sold_at": sold_at.astimezone(offset).isoformat(),
        "customer": customer,
        "product": {
            "sku": draw(st.text(PRINTABLE, min_size=1, max_size=64).filter(str.strip)),
            "name": draw(st.text(PRINTABLE, max_size=200)),
        },
        "amount": draw(st.decimals(0, 10**9, places=2).map(str) | st.integers(0, 10**9)),
        "currency": draw(st.sampled_from(["PEN", "USD", "EUR"])),
        "attributes": draw(ATTRIBUTES | st.just({"deepest": [_nested(4)]})),  # ten levels
    }


def _changed(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the field at `path` set to `value` (or left out)."""
    changed = copy.deepcopy(body)
    *parents, name = path.split(".")
    target = changed
    for parent in parents:
        target = target[parent] if isinstance(target.get(parent), dict) else {}
    if value is REMOVED:
        target.pop(name, None)
    else:
        target[name] = value
    return changed


@st.composite
def disturbed_sales(draw: st.DrawFn) -> tuple[Any, set[str]]:
    """A valid body with one to three fields left out or set to anything, and their paths."""
    body = draw(valid_sales())
    paths = draw(st.lists(st.sampled_from(BODY_PATHS), min_size=1, max_size=3, unique=True))
    for path in sorted(paths, key=len):  # "customer" before "customer.name"
        body = _changed(body, path, draw(WRONG_VALUES))
    return body, set(paths)


ANYTHING = {"*"}  # a body not built from a sale: any field may be named
BODIES = st.one_of(
    disturbed_sales(),
    st.tuples(JSON_VALUES, st.just(ANYTHING)),
    st.tuples(st.binary(max_size=200).map(lambda data: data.decode("latin-1")), st.just(ANYTHING)),
)


def _post(client: FlaskClient, token: str, body: Any) -> TestResponse:
    """POST /api/sales at NOW: JSON for a value, the text as it is for a string."""
    as_sent: dict[str, Any] = (
        {"data": body, "content_type": "application/json"}
        if isinstance(body, str)
        else {"json": body}
    )
    with freeze_time(NOW):
        return client.post("/api/sales", headers={"Authorization": f"Bearer {token}"}, **as_sent)


def _stored_ids(session: Session) -> set[str]:
    session.rollback()  # a fresh look at what the app committed
    return set(session.scalars(select(Sale.external_id)))


def _may_be_named(field: str, disturbed: set[str]) -> bool:
    """Whether a problem with `field` can come from the disturbed paths (without a phone or an
    email, the phone is the field named)."""
    if disturbed == ANYTHING:
        return field in BODY_PATHS or field.startswith("attributes.")
    if field == "customer.phone" and disturbed & {"customer", "customer.phone", "customer.email"}:
        return True
    return any(field == path or field.startswith(path + ".") for path in disturbed)


# What makes a sale another one under the same external id (`sales.differences`).
COMPARED = {"sold_at", "customer.phone", "customer.email", "product.sku", "amount", "currency"}


def _names_what_differs(answer: TestResponse) -> None:
    """A 409: the external id recorded before, then each field that differs from it."""
    fields = [problem["field"] for problem in answer.get_json()["errors"]]
    assert fields[0] == "external_id" and fields[1:], fields
    assert set(fields[1:]) <= COMPARED, fields


def _stored_or_named(
    answer: TestResponse, body: Any, disturbed: set[str], session: Session
) -> None:
    """The answer to a body with `disturbed` paths: the sale stored (200, 201), or 4xx with
    every problem named by a field those paths explain; never a 500."""
    assert answer.status_code in (200, 201, 400, 409, 422), answer.get_data(as_text=True)[:300]
    reply = answer.get_json()
    if answer.status_code == 409:
        _names_what_differs(answer)
        return
    if answer.status_code in (200, 201):
        sent = json.loads(body) if isinstance(body, str) else body
        assert reply["sale"]["external_id"] == sent["external_id"].strip()
        assert reply["sale"]["external_id"] in _stored_ids(session)
        return
    problems = reply["errors"]
    assert problems and all(isinstance(p["message"], str) and p["message"] for p in problems)
    if answer.status_code == 400:  # not a JSON object: there is no field to name
        assert disturbed == ANYTHING and [p["field"] for p in problems] == [None], problems
        return
    for problem in problems:
        assert isinstance(problem["field"], str), problem
        assert _may_be_named(problem["field"], disturbed), (problem, body)


@settings(DATABASE, max_examples=15)
@given(body=valid_sales())
def test_a_valid_sale_is_stored_as_sent(
    body: dict[str, Any], client: FlaskClient, token: str, session: Session
) -> None:
    external_id = body["external_id"].strip()
    known = external_id in _stored_ids(session)
    answer = _post(client, token, body)
    if known and answer.status_code == 409:  # the same external id with other content
        _names_what_differs(answer)
        return
    assert answer.status_code == (200 if known else 201), answer.get_json()
    session.rollback()
    sale = session.scalars(select(Sale).where(Sale.external_id == external_id)).one()
    assert answer.get_json()["sale"]["id"] == sale.id
    if known:
        return  # the same external id again: the first sale, unchanged
    assert sale.sold_at == datetime.fromisoformat(body["sold_at"]).astimezone(UTC)
    assert sale.amount == Decimal(str(body["amount"]))
    assert (sale.currency, sale.attributes) == (body["currency"], body["attributes"])
    customer = session.get(Customer, sale.customer_id)
    assert customer is not None
    email = body["customer"].get("email")  # a new phone with a known email: that customer's
    assert customer.phone == normalise_phone(body["customer"]["phone"], "PE") or (
        email is not None and customer.email == normalise_email(email)
    )


@settings(DATABASE, max_examples=4)
@given(
    body=valid_sales(),
    values=st.lists(WRONG_VALUES, min_size=len(BODY_PATHS), max_size=len(BODY_PATHS)),
)
def test_any_value_in_any_one_field_is_stored_or_named(
    body: dict[str, Any], values: list[Any], client: FlaskClient, token: str, session: Session
) -> None:
    for path, value in zip(BODY_PATHS, values, strict=True):  # every field, every example
        changed = _changed(body, path, value)
        _stored_or_named(_post(client, token, changed), changed, {path}, session)


@settings(DATABASE, max_examples=25)
@given(sent=BODIES)
def test_any_body_is_stored_or_refused_naming_the_field(
    sent: tuple[Any, set[str]], client: FlaskClient, token: str, session: Session
) -> None:
    body, disturbed = sent
    _stored_or_named(_post(client, token, body), body, disturbed, session)
