"""What the shops sent that was not recorded, and why: for a person to read and act on."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from scheduler.lifecycle import DeliveryOutcome
from scheduler.models import ShopDelivery
from web.admin import blueprint
from web.database import db_session

PAGE = 200
SHOWN = (DeliveryOutcome.REFUSED, DeliveryOutcome.IGNORED)  # the others are on customers' pages


@blueprint.get("/shop-deliveries")
def shop_deliveries() -> str:
    rows = db_session().scalars(
        select(ShopDelivery)
        .where(ShopDelivery.outcome.in_(SHOWN))
        .order_by(ShopDelivery.received_at.desc(), ShopDelivery.id.desc())
        .limit(PAGE)
    )
    return render_template("admin/shop_deliveries.html", deliveries=list(rows))
