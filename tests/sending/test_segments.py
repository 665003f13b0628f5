"""SMS size: GSM-7 unless one character forbids it, segments never split a character."""

from __future__ import annotations

import re

import pytest

from scheduler.defaults import TemplateFile, default_templates
from scheduler.lifecycle import Channel
from scheduler.sending.segments import GSM7, UCS2, sms_size


def test_empty_text_costs_nothing() -> None:
    size = sms_size("")
    assert (size.encoding, size.units, size.segments, size.unsupported) == (GSM7, 0, 0, "")


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm7_segments(length: int, segments: int) -> None:
    size = sms_size("a" * length)
    assert (size.encoding, size.units, size.segments) == (GSM7, length, segments)


@pytest.mark.parametrize("char", ["€", "[", "]", "{", "}", "~", "^", "|", "\\"])
def test_extension_characters_take_two_septets(char: str) -> None:
    size = sms_size(char * 80)
    assert (size.encoding, size.units, size.segments) == (GSM7, 160, 1)
    assert sms_size(char * 80 + "a").segments == 2


def test_an_extension_character_is_never_split_across_parts() -> None:
    # 152 septets then a two-septet €: a plain division says 154 <= 306 fits two parts,
    # but the € cannot start in part one at septet 153, so it moves to part two.
    text = "a" * 152 + "€" + "a" * 152
    size = sms_size(text)
    assert size.units == 306
    assert size.segments == 3
    # Without the straddle the same number of septets fits in two parts.
    assert sms_size("a" * 151 + "€" + "a" * 153).segments == 2


@pytest.mark.parametrize(
    ("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_one_accented_a_switches_to_ucs2(length: int, segments: int) -> None:
    size = sms_size("á" + "a" * (length - 1))
    assert (size.encoding, size.units, size.segments) == (UCS2, length, segments)
    assert size.unsupported == "á"


def test_unsupported_lists_each_character_once_in_order() -> None:
    assert sms_size("á b á ó ú ó").unsupported == "áóú"


def test_an_emoji_counts_two_utf16_units() -> None:
    size = sms_size("Gracias 🙂")
    assert (size.encoding, size.units, size.segments) == (UCS2, 10, 1)
    assert size.unsupported == "🙂"
    assert sms_size("🙂" * 35).segments == 1
    assert sms_size("🙂" * 35 + "a").segments == 2


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    text = "a" * 66 + "🙂" + "a" * 66  # 134 units: the emoji would straddle units 67-68
    size = sms_size(text)
    assert (size.units, size.segments) == (134, 3)


def test_a_non_breaking_space_forces_ucs2() -> None:
    size = sms_size("Hola\u00a0Rosa")
    assert size.encoding == UCS2
    assert size.unsupported == "\u00a0"


def test_spanish_letters_in_the_gsm_alphabet_stay_gsm7() -> None:
    size = sms_size("¿Qué tal, Ñoño? ¡Éxito, niño! ü ö ä à è ù ì ò")
    assert size.encoding == GSM7 and size.unsupported == ""
    assert size.segments == 1


def _sms_templates() -> list[TemplateFile]:
    return [template for template in default_templates() if template.channel is Channel.SMS]


def test_both_languages_have_sms_templates() -> None:
    locales = {template.locale for template in _sms_templates()}
    assert {"es", "en"} <= locales


@pytest.mark.parametrize("template", _sms_templates(), ids=lambda t: f"{t.locale}/{t.name}.txt")
def test_default_sms_templates_are_gsm7_outside_their_tags(template: TemplateFile) -> None:
    outside_tags = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "", template.body, flags=re.DOTALL)
    size = sms_size(outside_tags)
    where = f"sms/{template.locale}/{template.name}.txt"
    assert size.encoding == GSM7, f"{where}: {size.unsupported!r} forces UCS-2"


@pytest.mark.parametrize("char", ["á", "í", "ó", "ú", "Á"])
def test_other_spanish_accents_are_outside_gsm7(char: str) -> None:
    size = sms_size(f"Hola {char}")
    assert size.encoding == UCS2 and size.unsupported == char
