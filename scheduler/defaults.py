"""The default cadence and templates that `postventa init` installs when there are none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.lifecycle import TEMPLATE_CHANNELS, Anchor, Channel
from scheduler.models import Cadence, CadenceStep, MessageTemplate

# Edited in the top-level `message_templates/`, which pyproject.toml ships as this package.
TEMPLATES_PACKAGE = "scheduler.message_templates"


class MissingTemplates(Exception):
    """The installed package carries no default templates: every follow-up would fail."""


def templates_root() -> Traversable:
    """The shipped templates, from a checkout, an editable install or a wheel alike."""
    return files(TEMPLATES_PACKAGE)


@dataclass(frozen=True)
class DefaultStep:
    key: str
    anchor: Anchor
    offset: timedelta
    channel: Channel
    template_name: str
    condition: str | None = None


# Not only at renewal: thanks, a check-in, a score, then a person for the unhappy and a review
# request for the happy, a usage check-in, and a reminder before renewal for products that renew.
DEFAULT_STEPS = (
    DefaultStep("day1-thanks", Anchor.SALE, timedelta(days=1), Channel.SMS, "thanks"),
    DefaultStep("day7-check-in", Anchor.SALE, timedelta(days=7), Channel.SMS, "check_in"),
    DefaultStep("day21-score", Anchor.SALE, timedelta(days=21), Channel.SMS, "score_question"),
    DefaultStep(
        "review-request",
        Anchor.SCORE,
        timedelta(hours=2),
        Channel.SMS,
        "review_request",
        "score >= 9",
    ),
    DefaultStep(
        "low-score-handoff",
        Anchor.SCORE,
        timedelta(0),
        Channel.SMS,
        "low_score_handoff",
        "score <= 6",
    ),
    DefaultStep("day90-usage", Anchor.SALE, timedelta(days=90), Channel.EMAIL, "usage_check_in"),
    DefaultStep(
        "renewal-reminder", Anchor.RENEWAL, timedelta(days=-14), Channel.EMAIL, "renewal_reminder"
    ),
    # After a case is resolved: was it really? A "no" reopens the case.
    DefaultStep("case-check", Anchor.CASE, timedelta(days=3), Channel.SMS, "case_check"),
)


@dataclass(frozen=True)
class TemplateFile:
    name: str
    channel: Channel
    locale: str
    subject: str | None
    body: str


def parse_template_file(file: Traversable, channel: Channel, locale: str) -> TemplateFile:
    """Read `{channel}/{locale}/{name}.txt`; email files start with a `Subject:` line."""
    text = file.read_text(encoding="utf-8").strip("\n")
    subject = None
    if channel is Channel.EMAIL:
        first, _, rest = text.partition("\n")
        if not first.startswith("Subject:"):
            where = f"{channel}/{locale}/{file.name}"
            raise ValueError(f"{where}: line 1: an email template starts with 'Subject: ...'")
        subject, text = first.removeprefix("Subject:").strip(), rest.strip("\n")
    return TemplateFile(file.name.removesuffix(".txt"), channel, locale, subject, text)


def _children(folder: Traversable) -> list[Traversable]:
    return sorted(folder.iterdir(), key=lambda child: child.name) if folder.is_dir() else []


def default_templates(root: Traversable | None = None) -> list[TemplateFile]:
    """Every shipped template, in a stable order; empty when the install carries none."""
    if root is None:
        try:
            root = templates_root()
        except ModuleNotFoundError:  # a build that left the package out
            return []
    return [
        parse_template_file(file, channel, locale_dir.name)
        for channel in TEMPLATE_CHANNELS
        for locale_dir in _children(root / channel.value)
        for file in _children(locale_dir)
        if file.name.endswith(".txt") and file.is_file()
    ]


def install_defaults(session: Session, now: datetime) -> list[str]:
    """Add the default cadence if there is no cadence, and any missing default template.

    Raises MissingTemplates, and adds nothing, when the install ships no templates."""
    templates = _shipped_templates()
    report = []
    if session.scalar(select(Cadence.id).limit(1)) is None:
        cadence = Cadence(name="Default", is_default=True, created_at=now, updated_at=now)
        cadence.steps = [
            CadenceStep(
                key=step.key,
                anchor=step.anchor,
                offset_minutes=int(step.offset.total_seconds() // 60),
                channel=step.channel,
                template_name=step.template_name,
                condition=step.condition,
            )
            for step in DEFAULT_STEPS
        ]
        session.add(cadence)
        session.flush()
        audit.record(
            session,
            at=now,
            actor="init",
            action="cadence.install",
            entity_type="cadence",
            entity_id=cadence.id,
            steps=len(DEFAULT_STEPS),
        )
        report.append(f"default cadence installed ({len(DEFAULT_STEPS)} steps)")
    return report + install_templates(session, now, templates)


def _shipped_templates() -> list[TemplateFile]:
    templates = default_templates()
    if not templates:
        raise MissingTemplates(
            f"no default templates found in the package {TEMPLATES_PACKAGE}: "
            "this installation of Postventa is incomplete; reinstall it"
        )
    return templates


def install_templates(
    session: Session, now: datetime, templates: list[TemplateFile] | None = None
) -> list[str]:
    """Add every default template the database lacks (one a new version's steps need, after
    `db upgrade`); the owner's edited ones are left as they are."""
    templates = _shipped_templates() if templates is None else templates
    report = []
    query = select(MessageTemplate.name, MessageTemplate.channel, MessageTemplate.locale)
    existing = {tuple(row) for row in session.execute(query)}
    added = 0
    for template in templates:
        if (template.name, template.channel, template.locale) not in existing:
            session.add(
                MessageTemplate(
                    name=template.name,
                    channel=template.channel,
                    locale=template.locale,
                    subject=template.subject,
                    body=template.body,
                    updated_at=now,
                )
            )
            added += 1
    if added:
        report.append(f"{added} default templates installed")
    return report
