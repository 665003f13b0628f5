"""What the notices to staff and owners say, in each language the admin speaks.

`scheduler/` reads no Flask catalog, so the sentences are here, whole, one table per language;
the names of reasons and remedies match the admin's (tests/test_spanish.py compares them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NoticeTexts:
    new_subject: str  # {customer} {reason} {due}
    new_body: str  # {customer} {address} {message} {link}
    overdue_subject: str  # {customer}
    overdue_body: str  # {customer} {due} {level} {link}
    remedy_subject: str  # {what}
    remedy_body: str  # {who} {what} {link}
    reasons: dict[str, str]  # a case's reason: the label that opened it
    kinds: dict[str, str]  # a remedy's kind


TEXTS = {
    "es": NoticeTexts(
        new_subject="Nuevo caso: {customer} ({reason}) - responder antes de {due}",
        new_body="{customer} ({address}) escribió:\n\n{message}\n\nAbrir el caso: {link}",
        overdue_subject="Caso sin respuesta: {customer}",
        overdue_body=(
            "El caso de {customer} pasó su plazo de primera respuesta ({due}); "
            "recordatorio {level}.\n\nAbrir el caso: {link}"
        ),
        remedy_subject="Compensación por aprobar: {what}",
        remedy_body="{who} pide que apruebes:\n\n{what}\n\nAbrir el caso: {link}",
        reasons={
            "objection": "queja",
            "question": "pregunta",
            "positive": "positiva",
            "neutral": "neutral",
            "opt_out": "baja",
            "opt_in": "alta",
            "help": "ayuda",
            "automatic": "automático",
            "at_risk": "en riesgo (abierto por una persona)",
        },
        kinds={
            "discount": "descuento",
            "refund": "reembolso",
            "replacement": "reemplazo",
            "other": "otra",
        },
    ),
    "en": NoticeTexts(
        new_subject="New case: {customer} ({reason}) - answer before {due}",
        new_body="{customer} ({address}) wrote:\n\n{message}\n\nOpen the case: {link}",
        overdue_subject="Case not answered: {customer}",
        overdue_body=(
            "The case of {customer} is past its first-response deadline ({due}); "
            "reminder {level}.\n\nOpen the case: {link}"
        ),
        remedy_subject="A remedy to approve: {what}",
        remedy_body="{who} asks you to approve:\n\n{what}\n\nOpen the case: {link}",
        reasons={
            "objection": "objection",
            "question": "question",
            "positive": "positive",
            "neutral": "neutral",
            "opt_out": "opt-out",
            "opt_in": "opt-in",
            "help": "help",
            "automatic": "automatic",
            "at_risk": "at risk (opened by a person)",
        },
        kinds={
            "discount": "discount",
            "refund": "refund",
            "replacement": "replacement",
            "other": "other",
        },
    ),
}


def texts_for(locale: str | None, fallback: str) -> NoticeTexts:
    """The table for `locale`, else for `fallback` (the business's language), else Spanish."""
    return TEXTS.get(locale or "") or TEXTS.get(fallback) or TEXTS["es"]
