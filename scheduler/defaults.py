"""The default cadence and templates that `postventa init` installs when there are none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.lifecycle import Anchor, Channel
from scheduler.models import Cadence, CadenceStep, MessageTemplate

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "message_templates"


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
        "review-request", Anchor.SCORE, timedelta(hours=2), Channel.SMS, "review_request",
        "score >= 9",
    ),
    DefaultStep(
        "low-score-handoff", Anchor.SCORE, timedelta(0), Channel.SMS, "low_score_handoff",
        "score <= 6",
    ),
    DefaultStep("day90-usage", Anchor.SALE, timedelta(days=90), Channel.EMAIL, "usage_check_in"),
    DefaultStep(
        "renewal-reminder", Anchor.RENEWAL, timedelta(days=-14), Channel.EMAIL, "renewal_reminder"
    ),
    # After a case is resolved: was it really? A "no" reopens the case.
    DefaultStep("case-check", Anchor.CASE, timedelta(days=3), Channel.SMS, "case_check"),
)  # fmt: skip


@dataclass(frozen=True)
class TemplateFile:
    name: str
    channel: Channel
    locale: str
    subject: str | None
    body: str


def parse_template_file(path: Path, channel: Channel) -> TemplateFile:
    """Read `{channel}/{locale}/{name}.txt`; email files start with a `Subject:` line."""
    text = path.read_text(encoding="utf-8").strip("\n")
    subject = None
    if channel is Channel.EMAIL:
        first, _, rest = text.partition("\n")
        if not first.startswith("Subject:"):
            raise ValueError(f"{path}: line 1: an email template starts with 'Subject: ...'")
        subject, text = first.removeprefix("Subject:").strip(), rest.strip("\n")
    return TemplateFile(path.stem, channel, path.parent.name, subject, text)


def default_templates(root: Path = TEMPLATES_DIR) -> list[TemplateFile]:
    return [
        parse_template_file(path, channel)
        for channel in Channel
        for path in sorted((root / channel.value).glob("*/*.txt"))
    ]


def install_defaults(session: Session, now: datetime) -> list[str]:
    """Add the default cadence if there is no cadence, and any missing default template."""
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
            session, at=now, actor="init", action="cadence.install", entity_type="cadence",
            entity_id=cadence.id, steps=len(DEFAULT_STEPS),
        )  # fmt: skip
        report.append(f"default cadence installed ({len(DEFAULT_STEPS)} steps)")
    query = select(MessageTemplate.name, MessageTemplate.channel, MessageTemplate.locale)
    existing = {tuple(row) for row in session.execute(query)}
    added = 0
    for template in default_templates():
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
