"""A small hand-built data set for the customers at risk, the themes of complaints, the "did we
solve it?" checks and a product's figures, in the period of `tests/figures_data.py`. Each
customer is named for what they show (`WHO`); some sit just on the wrong side of a rule (a
failure followed by a delivery, a reply after the unanswered ones began, one sale only, the
latest follow-up too recent to count as unanswered)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from scheduler.lifecycle import CaseStatus, Channel, FollowUpStatus, SaleStatus
from scheduler.models import (
    AuditEntry,
    Cadence,
    CadenceStep,
    Case,
    Customer,
    FollowUp,
    LexiconWord,
    Product,
    Sale,
)
from tests.factories import inbound_sms
from tests.figures_data import NOW, at

S = FollowUpStatus
WHO = (
    "undelivered",  # a follow-up failed in the period, nothing arrived since
    "failed then delivered",  # a failure, then a delivery: reached
    "bounced",  # their email address bounced in the period
    "silent score",  # "3", and nothing more; a case is open for them
    "score with words",  # "2, el repartidor ..." says why: not silent
    "reopened",  # said the case was not solved
    "gone quiet",  # two sales, the last three follow-ups unanswered
    "answered once",  # two sales, answered the second of the last three
    "one sale",  # three unanswered, but bought once
    "too recent",  # two sales, the third unanswered one went out a day ago
    "complainer",  # complaints about billing and waiting, and with the owner's word
    "walk-in",  # bought nothing here: a complaint about no product
)


@dataclass
class Built:
    customers: dict[str, int] = field(default_factory=dict)  # WHO -> id
    open_case: int = 0  # the silent score's
    kitchen: str = "COC-1"  # the SKU of the product complained about most


def build_risks(session: Session) -> Built:
    built = Built()
    cadence = Cadence(name="Risk", created_at=NOW, updated_at=NOW)
    session.add(cadence)
    session.flush()
    steps = [
        CadenceStep(
            cadence_id=cadence.id,
            key=f"r{n}",
            offset_minutes=n,
            channel=Channel.SMS,
            template_name="thanks",
        )
        for n in range(1, 4)
    ]
    kitchen = Product(sku=built.kitchen, name="Cocina")
    washer = Product(sku="LAV-1", name="Lavadora")
    session.add_all([*steps, kitchen, washer])
    customers = {
        who: Customer(name=who.title(), phone=f"+5198700{n:04d}", created_at=at(1, 8))
        for n, who in enumerate(WHO)
    }
    customers["bounced"].email_bounced_at = at(7, 9)
    session.add_all(customers.values())
    session.flush()
    built.customers = {who: row.id for who, row in customers.items()}

    def sale(who: str, product: Product, n: int = 1) -> Sale:
        row = Sale(
            external_id=f"R-{who}-{n}",
            customer_id=customers[who].id,
            product_id=product.id,
            sold_at=at(1, 9),
            status=SaleStatus.ACTIVE,
            created_at=at(1, 9),
        )
        session.add(row)
        session.flush()
        return row

    def follow_up(
        sold: Sale, status: FollowUpStatus, when: datetime, n: int = 0, *, case: int | None = None
    ) -> FollowUp:
        row = FollowUp(
            sale_id=sold.id,
            step_id=steps[n].id,
            customer_id=sold.customer_id,
            channel=Channel.SMS,
            status=status,
            due_at=when,
            sent_at=when if status in (S.SENT, S.DELIVERED) else None,
            case_id=case,
            created_at=at(1, 9),
            updated_at=when,
        )
        session.add(row)
        session.flush()
        return row

    def reply(
        who: str,
        when: datetime,
        body: str,
        *,
        to: FollowUp | None = None,
        score: int | None = None,
        label: str = "objection",
        needs_human: bool = True,
    ) -> None:
        session.add(
            inbound_sms(
                body,
                when,
                sender=customers[who].phone or "",
                customer_id=customers[who].id,
                follow_up_id=to.id if to else None,
                score=score,
                label=label,
                needs_human=needs_human,
            )
        )

    def case(who: str, opened: datetime, status: CaseStatus = CaseStatus.OPEN) -> int:
        row = Case(
            customer_id=customers[who].id,
            status=status,
            opened_at=opened,
            first_response_due_at=opened,
            resolved_at=opened if status is CaseStatus.RESOLVED else None,
        )
        session.add(row)
        session.flush()
        return row.id

    follow_up(sale("undelivered", washer), S.FAILED, at(5, 10))
    reached = sale("failed then delivered", washer)
    follow_up(reached, S.FAILED, at(4, 10))
    follow_up(reached, S.DELIVERED, at(6, 10), 1)

    silent = follow_up(sale("silent score", washer), S.DELIVERED, at(8, 9))
    reply("silent score", at(8, 10), "3", to=silent, score=3)
    built.open_case = case("silent score", at(8, 10))

    kitchen_sale = sale("score with words", kitchen)
    worded = follow_up(kitchen_sale, S.DELIVERED, at(9, 9))
    reply(
        "score with words",
        at(9, 10),
        "2, el repartidor tiró la caja y llegó rota",
        to=worded,
        score=2,
    )

    reopened = case("reopened", at(3, 10))
    # Reopened in the period, and earlier, before it (not counted).
    session.add_all(
        AuditEntry(
            at=when,
            actor="customer",
            action="case.reopen",
            entity_type="case",
            entity_id=reopened,
            details={},
        )
        for when in (at(10, 10), at(1, 10))
    )
    # "Did we solve it?": answered "no" (reopened), answered "yes", and not answered.
    checks_sale = sale("reopened", washer)
    check = follow_up(checks_sale, S.DELIVERED, at(9, 12), 2, case=reopened)
    reply("reopened", at(10, 10), "sigue sin funcionar", to=check)
    solved = case("complainer", at(2, 10), CaseStatus.RESOLVED)
    confirmed = follow_up(sale("complainer", kitchen), S.DELIVERED, at(6, 12), 2, case=solved)
    reply("complainer", at(6, 13), "sí, gracias", to=confirmed, label="positive", needs_human=False)
    follow_up(checks_sale, S.SENT, at(11, 12), 1, case=reopened)

    for who, sales, replied in (
        ("gone quiet", 2, None),
        ("answered once", 2, at(6, 12)),
        ("one sale", 1, None),
    ):
        bought = [sale(who, washer, n) for n in range(1, sales + 1)]
        for n, day in enumerate((2, 6, 11)):
            follow_up(bought[0], S.DELIVERED, at(day, 10), n)
        if replied:
            reply(who, replied, "todo bien", label="positive", needs_human=False)
    recent = [sale("too recent", washer, n) for n in (1, 2)]
    for n, day in enumerate((2, 6, 15)):
        follow_up(recent[0], S.DELIVERED, at(day, 10), n)

    complained = follow_up(sale("complainer", kitchen, 2), S.DELIVERED, at(12, 9), 1)
    reply("complainer", at(12, 10), "Me cobraron dos veces y nadie responde", to=complained)
    reply("complainer", at(13, 10), "la puerta vino chancada", to=complained)
    reply(
        "complainer",
        at(13, 11),
        "The technician was rude",
        to=follow_up(sale("complainer", washer, 3), S.DELIVERED, at(13, 9), 1),
    )
    # Written first, answering no follow-up: about the latest purchase, the washer.
    reply("complainer", at(14, 10), "pésima atención en la tienda")
    reply("complainer", at(14, 11), "llegó rápido", label="positive", needs_human=False)
    reply("complainer", at(20, 10), "llegó roto")  # after the period
    reply("walk-in", at(14, 12), "la cajera fue grosera")
    session.add(LexiconWord(label="breakage", word="chancada", created_at=NOW, created_by="owner"))
    session.commit()
    return built
