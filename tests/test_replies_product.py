"""A reply's product, kept by the database (`Message.product_id`, migration 0038): its
follow-up's, through every write that could change it, on both databases; and the
complaints, which read it from the objections' index, name the product it says."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from scheduler import schema
from scheduler.config import Config
from scheduler.db import make_session_factory
from scheduler.figures.complaints import complaint_themes
from scheduler.figures.period import Period
from scheduler.lifecycle import Channel, Direction
from scheduler.listening.themes import vocabulary
from scheduler.models import FollowUp, Message, Product, Sale
from tests.dispatching import follow_up, setup_sales
from tests.factories import NOW, inbound_sms, sale_input
from tests.first_release import first_release_shop
from tests.migrating import blank  # noqa: F401 - fixture

__all__ = ["blank"]


def _products(session: Session) -> dict[int, int | None]:
    """Each message's product as the database keeps it (the ORM's objects do not see it)."""
    session.flush()
    return dict(session.execute(select(Message.id, Message.product_id)).all())


def _product(session: Session, sku: str) -> int:
    return session.scalars(select(Product.id).where(Product.sku == sku)).one()


def test_a_reply_follows_its_follow_ups_product(engine: Engine, config: Config) -> None:
    sessions = setup_sales(
        engine,
        config,
        sale_input("S-1"),
        sale_input("S-2", product_sku="COC-1", product_name="Cocina"),
    )
    with sessions.begin() as session:
        washer, stove = _product(session, "LAV-9"), _product(session, "COC-1")
        first, other = (
            follow_up(session, "day1-thanks", "S-1"),
            follow_up(session, "day1-thanks", "S-2"),
        )
        reply = inbound_sms("llegó rota", NOW, follow_up_id=first.id, label="objection")
        stranger = inbound_sms("hola", NOW)  # answers no follow-up: none
        sent = Message(  # ours: none
            direction=Direction.OUTBOUND,
            channel=Channel.SMS,
            follow_up_id=first.id,
            from_address="+15005550006",
            to_address="+51987654321",
            body="¿Todo bien?",
            status="queued",
            created_at=NOW,
        )
        session.add_all([reply, stranger, sent])
        session.flush()
        assert _products(session) == {reply.id: washer, stranger.id: None, sent.id: None}

        # The sale changes product: its follow-ups move, and their replies with them.
        session.execute(update(Sale).where(Sale.external_id == "S-1").values(product_id=stove))
        assert _products(session)[reply.id] == stove
        session.execute(update(FollowUp).where(FollowUp.id == first.id).values(product_id=None))
        assert _products(session)[reply.id] is None
        session.execute(update(FollowUp).where(FollowUp.id == first.id).values(product_id=washer))
        # The reply moved to another follow-up, or turned out to be ours.
        session.execute(update(Message).where(Message.id == reply.id).values(follow_up_id=other.id))
        assert _products(session)[reply.id] == stove
        session.execute(
            update(Message).where(Message.id == reply.id).values(direction=Direction.OUTBOUND)
        )
        assert _products(session)[reply.id] is None
        session.execute(
            update(Message).where(Message.id == reply.id).values(direction=Direction.INBOUND)
        )
        # Written by hand, wrong: the database keeps the follow-up's.
        session.execute(update(Message).where(Message.id == reply.id).values(product_id=washer))
        session.execute(update(Message).where(Message.id == sent.id).values(product_id=washer))
        assert _products(session) == {reply.id: stove, stranger.id: None, sent.id: None}
        session.execute(
            text(
                "INSERT INTO messages (direction, channel, from_address, to_address, body, "
                "status, created_at, product_id) VALUES ('outbound', 'sms', '+1', '+2', 'x', "
                f"'queued', '{NOW.isoformat()}', {washer})"
            )
        )
        assert set(_products(session).values()) == {stove, None}


def test_the_complaints_name_the_product_the_reply_keeps(engine: Engine, config: Config) -> None:
    """Read along the objections' index, the product is the follow-up's as it is now."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    with sessions.begin() as session:
        first = follow_up(session, "day1-thanks", "S-1")
        session.add(inbound_sms("llegó rota", NOW, follow_up_id=first.id, label="objection"))
        session.flush()
        day = NOW.astimezone(config.business.tz).date()
        period = Period(day - timedelta(days=1), day + timedelta(days=1), config.business.tz)
        before = complaint_themes(session, period, vocabulary(session))
        assert {(found.sku, found.count) for found in before} == {("LAV-9", 1)}
        session.add(Product(sku="COC-1", name="Cocina"))
        session.flush()
        stove = _product(session, "COC-1")
        session.execute(update(Sale).values(product_id=stove))
        after = complaint_themes(session, period, vocabulary(session))
        assert {(found.sku, found.product, found.count) for found in after} == {
            ("COC-1", "Cocina", 1)
        }


def test_the_replies_already_there_are_given_their_product(blank: Engine) -> None:
    """The first release's replies, one to a follow-up and others to none."""
    first_release_shop(blank)
    schema.upgrade(blank, "0037")
    with blank.connect() as connection:
        truth: dict[int, int] = dict(
            connection.execute(
                text(
                    "SELECT messages.id, follow_ups.product_id FROM messages "
                    "JOIN follow_ups ON follow_ups.id = messages.follow_up_id "
                    "WHERE messages.direction = 'inbound'"
                )
            ).all()
        )
    assert truth and all(truth.values()), "the first release has replies to follow-ups"
    schema.upgrade(blank)
    with make_session_factory(blank)() as session:
        kept = _products(session)
        assert {message: kept[message] for message in truth} == truth
        assert {product for message, product in kept.items() if message not in truth} == {None}
