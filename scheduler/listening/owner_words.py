"""The owner's own words: shop talk and local slang the built-in lexicons cannot know."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.listening.classify import DEFAULT_LEXICON, Label, Lexicon
from scheduler.listening.keywords import fold
from scheduler.listening.themes import Theme
from scheduler.models import LexiconWord

# Consent words are the law's and the carriers', not the owner's to change.
EXTENSIBLE = (Label.OBJECTION, Label.QUESTION, Label.POSITIVE, Label.NEUTRAL)
# What a word may be added for: a reading of replies, or a theme of complaints.
MEANINGS = (*EXTENSIBLE, *Theme)


class VocabularyError(ValueError):
    """A word that cannot be added, and why."""


def add_word(session: Session, label: str, word: str, *, now: datetime, actor: str) -> LexiconWord:
    """Store one of the owner's words for `label` (a reading, or a theme of complaints), folded
    as replies are (case, accents)."""
    if label not in {item.value for item in MEANINGS}:
        allowed = ", ".join(item.value for item in MEANINGS)
        raise VocabularyError(f"label {label!r}: words can be added to {allowed}")
    folded = fold(word)
    if not folded or len(folded) > 100:
        raise VocabularyError(f"word {word!r}: between 1 and 100 letters, please")
    existing = session.scalar(
        select(LexiconWord).where(LexiconWord.label == label, LexiconWord.word == folded)
    )
    if existing is not None:
        raise VocabularyError(f"{folded!r} is already a {label} word")
    row = LexiconWord(label=label, word=folded, created_at=now, created_by=actor)
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="lexicon.add",
        entity_type="lexicon_word",
        entity_id=row.id,
        label=label,
        word=folded,
    )
    return row


def owner_lexicon(session: Session) -> Lexicon:
    """The built-in lexicons with the owner's words added."""
    words: dict[Label, list[str]] = defaultdict(list)
    readings = [label.value for label in EXTENSIBLE]
    for label, word in session.execute(
        select(LexiconWord.label, LexiconWord.word).where(LexiconWord.label.in_(readings))
    ):
        words[Label(label)].append(word)
    return DEFAULT_LEXICON.extended(words) if words else DEFAULT_LEXICON


def remove_word(session: Session, row: LexiconWord, *, now: datetime, actor: str) -> None:
    audit.record(
        session,
        at=now,
        actor=actor,
        action="lexicon.remove",
        entity_type="lexicon_word",
        entity_id=row.id,
        label=row.label,
        word=row.word,
    )
    session.delete(row)
