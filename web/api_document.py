"""The OpenAPI 3.1 document of the JSON API, served at `GET /api/openapi.json`.

Public, without a token: it says what the API takes and answers, nothing of the shop's data, and
tools (code generators, schemathesis) read it before they have a token. tests/test_api_document.py
checks that it describes every route under /api and nothing else, and the API is run against it.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from scheduler.figures.summary import AGES
from scheduler.lifecycle import Anchor, CaseStatus, Channel, FollowUpStatus, SaleStatus
from scheduler.sending.planning import Because
from web.api import blueprint
from web.api_paging import MAX_LIMIT

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or null (OpenAPI 3.1: a JSON Schema type list or anyOf)."""
    if "type" in schema and isinstance(schema["type"], str):
        return schema | {"type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object with exactly these properties; all present unless `optional`."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def values(enum: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [member.value for member in enum]}


TEXT = {"type": "string"}
ID = {"type": "integer", "minimum": 1}
BOOL = {"type": "boolean"}
WHEN = {"type": "string", "format": "date-time"}  # UTC, to the second, with a Z
MAYBE_WHEN = nullable(WHEN)
MAYBE_TEXT = nullable(TEXT)
RENEWAL_DAYS = {"type": "integer", "minimum": 1, "maximum": 3650}
PAGE_SIZE = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}

CUSTOMER: dict[str, Any] = {
    "id": ID,
    "name": TEXT,
    "phone": MAYBE_TEXT,
    "email": MAYBE_TEXT,
    "locale": MAYBE_TEXT,
    "timezone": MAYBE_TEXT,
    "sms_opt_out": BOOL,
    "sms_opt_out_at": MAYBE_WHEN,
    "sms_opt_out_via": MAYBE_TEXT,
    "email_opt_out": BOOL,
    "email_opt_out_at": MAYBE_WHEN,
    "email_opt_out_via": MAYBE_TEXT,
    "email_bounced_at": MAYBE_WHEN,
    "email_bounce_reason": MAYBE_TEXT,
    "whatsapp_opt_in": BOOL,
    "whatsapp_opt_in_at": MAYBE_WHEN,
    "whatsapp_opt_in_via": MAYBE_TEXT,
    "whatsapp_opt_out": BOOL,
    "whatsapp_opt_out_at": MAYBE_WHEN,
    "whatsapp_opt_out_via": MAYBE_TEXT,
}
TIMELINE = {
    "type": "array",
    "description": "sales, follow-ups, messages and cases, oldest first",
    "items": {
        "type": "object",
        "properties": {
            "type": {"enum": ["sale", "follow_up", "message", "case"]},
            "at": MAYBE_WHEN,
        },
        "required": ["type", "at"],
    },
}
CADENCE: dict[str, Any] = {
    "name": TEXT,
    "is_default": BOOL,
    "active": BOOL,
    "product_category": MAYBE_TEXT,
    "steps": {"type": "array", "items": ref("Step")},
}
REPLANNED = obj(
    {"redated": {"type": "integer"}, "cancelled": {"type": "integer"}, "added": {"type": "integer"}}
)

SCHEMAS: dict[str, Any] = {
    "Errors": obj(
        {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": obj({"field": MAYBE_TEXT, "message": TEXT}),
            }
        }
    ),
    "Who": obj({"id": ID, "name": TEXT}),
    "FollowUp": obj(
        {
            "id": ID,
            "step": TEXT,
            "channel": values(Channel),
            "due_at": WHEN,
            "status": values(FollowUpStatus),
            "status_reason": MAYBE_TEXT,
        },
        optional=("status_reason",),
    ),
    "FollowUpDetailed": obj(
        {
            "id": ID,
            "step": TEXT,
            "channel": values(Channel),
            "due_at": WHEN,
            "status": values(FollowUpStatus),
            "sale_id": ID,
            "status_reason": MAYBE_TEXT,
            "sent_at": MAYBE_WHEN,
        }
    ),
    "Sale": obj(
        {
            "id": ID,
            "external_id": TEXT,
            "status": values(SaleStatus),
            "sold_at": WHEN,
            "cancelled_at": MAYBE_WHEN,
            "customer": ref("Who"),
            "product": nullable(obj({"sku": TEXT, "name": TEXT})),
            "amount": nullable({"type": "string", "pattern": r"^\d+\.\d\d$"}),
            "currency": MAYBE_TEXT,
            "attributes": {"type": "object"},
        }
    ),
    "SaleRecorded": obj(
        {
            "sale": ref("Sale"),
            "follow_ups": {"type": "array", "items": ref("FollowUp")},
            "skipped_follow_ups": {"type": "integer", "minimum": 0},
        }
    ),
    "NewSale": {
        "type": "object",
        "description": "Checked as the CSV import checks a row: every problem is named.",
        "properties": {
            "external_id": {"type": "string", "maxLength": 100},
            "sold_at": {"type": "string", "description": "ISO 8601; no offset: business time"},
            "customer": {
                "type": "object",
                "properties": {
                    "name": TEXT,
                    "phone": MAYBE_TEXT,
                    "email": MAYBE_TEXT,
                    "locale": MAYBE_TEXT,
                    "timezone": MAYBE_TEXT,
                    "whatsapp_opt_in": BOOL,
                },
                "required": ["name"],
            },
            "product": {
                "type": "object",
                "properties": {
                    "sku": TEXT,
                    "name": TEXT,
                    "category": MAYBE_TEXT,
                    "renewal_days": nullable(RENEWAL_DAYS),
                },
            },
            "amount": {"type": ["string", "number", "null"]},
            "currency": MAYBE_TEXT,
            "attributes": {"type": "object"},
        },
        "required": ["external_id", "sold_at", "customer"],
    },
    "Message": obj({"direction": TEXT, "body": TEXT, "at": WHEN}),
    "Case": obj(
        {
            "id": ID,
            "customer": ref("Who"),
            "status": values(CaseStatus),
            "reason": MAYBE_TEXT,
            "opened_at": WHEN,
            "first_response_due_at": WHEN,
            "first_responded_at": MAYBE_WHEN,
            "resolved_at": MAYBE_WHEN,
            "messages": {"type": "array", "items": ref("Message")},
        }
    ),
    "Customer": obj(CUSTOMER),
    "CustomerWithTimeline": obj(CUSTOMER | {"timeline": TIMELINE}),
    "CustomerChange": {
        "type": "object",
        "description": "Any of these; a consent change needs `by` (who) and `reason` (why).",
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "phone": MAYBE_TEXT,
            "email": MAYBE_TEXT,
            "locale": nullable({"type": "string", "enum": ["es", "en"]}),
            "timezone": MAYBE_TEXT,
            "sms_opt_out": BOOL,
            "email_opt_out": BOOL,
            "whatsapp_opt_in": BOOL,
            "whatsapp_opt_out": BOOL,
            "by": {"type": "string", "maxLength": 100},
            "reason": {"type": "string", "maxLength": 200},
        },
        "additionalProperties": False,
    },
    "Offset": {
        "type": "object",
        "description": "From the step's anchor; a renewal step counts back (days: -14).",
        "properties": {"days": {"type": "number"}, "hours": {"type": "number"}},
        "additionalProperties": False,
    },
    "Step": obj(
        {
            "key": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
            "anchor": values(Anchor),
            "offset": ref("Offset"),
            "channel": values(Channel),
            "template": TEXT,
            "condition": MAYBE_TEXT,
            "active": BOOL,
        },
        optional=("condition", "active"),
    ),
    "Cadence": obj(CADENCE),
    "Product": obj(
        {
            "sku": TEXT,
            "name": TEXT,
            "category": MAYBE_TEXT,
            "renewal_days": nullable(RENEWAL_DAYS),
            "cadence": MAYBE_TEXT,
            "follows": obj(
                {
                    "cadence": MAYBE_TEXT,
                    "because": nullable({"type": "string", "enum": [str(b) for b in Because]}),
                }
            ),
        }
    ),
    "ProductChange": {
        "type": "object",
        "description": "The whole product: every field, null where it has none.",
        "properties": {
            "sku": {"type": "string", "description": "as GET gave it; cannot change"},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "category": nullable({"type": "string", "maxLength": 100}),
            "renewal_days": nullable(RENEWAL_DAYS),
            "cadence": nullable({"type": "string", "description": "a cadence's name"}),
        },
        "required": ["name", "category", "renewal_days", "cadence"],
        "additionalProperties": False,
    },
    "CadenceSaved": obj(CADENCE | {"replanned": REPLANNED}),
    "CadenceChange": {
        "type": "object",
        "description": "Steps by key, checked as the admin's editor checks them.",
        "properties": {
            "active": BOOL,
            "product_category": MAYBE_TEXT,
            "steps": {"type": "array", "items": ref("Step"), "maxItems": 100},
        },
        "required": ["steps"],
        "additionalProperties": False,
    },
}


def listing(name: str, item: str) -> dict[str, Any]:
    """A page of a list: its items and the cursor of the next page (null at the end)."""
    return obj({name: {"type": "array", "items": ref(item)}, "next_cursor": MAYBE_TEXT})


ERRORS = {
    "400": "the query or the body cannot be read",
    "401": "no valid token",
    "404": "nothing there",
    "409": "it clashes with what is recorded",
    "413": "the body is over 1 MiB",
    "422": "the body is read, but wrong: every problem by field",
}


def answers(ok: dict[str, tuple[str, dict[str, Any]]], *refusals: str) -> dict[str, Any]:
    """The responses of an operation: its successes, and the errors it may give (401 always)."""
    responses = {
        status: {"description": text, "content": {JSON: {"schema": schema}}}
        for status, (text, schema) in ok.items()
    }
    for status in ("401", *refusals):
        responses[status] = {
            "description": ERRORS[status],
            "content": {JSON: {"schema": ref("Errors")}},
        }
    return responses


def query(name: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": text}


def path(name: str, schema: dict[str, Any], example: object) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "example": example}


def body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref(schema)}}}


PAGING = [
    query("limit", PAGE_SIZE, "rows on a page"),
    query("cursor", TEXT, "`next_cursor` of the page before"),
]
CADENCE_NAME = path("name", {"type": "string", "minLength": 1, "maxLength": 100}, "Default")

PATHS: dict[str, Any] = {
    "/api/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {}}}},
        }
    },
    "/api/sales": {
        "post": {
            "summary": "Record a sale and plan its follow-ups",
            "description": (
                "The same external_id again answers 200 with the recorded sale, or 409 listing "
                "what differs when sold_at, the customer's phone (else email), product.sku, "
                "amount or currency differ."
            ),
            "requestBody": body("NewSale"),
            "responses": answers(
                {
                    "201": ("recorded", ref("SaleRecorded")),
                    "200": ("already recorded", ref("SaleRecorded")),
                },
                "400",
                "409",
                "413",
                "422",
            ),
        }
    },
    "/api/sales/{sale_id}/cancel": {
        "post": {
            "summary": "Cancel a sale's pending follow-ups",
            "parameters": [path("sale_id", ID, 1)],
            "responses": answers({"200": ("cancelled", ref("SaleRecorded"))}, "404"),
        }
    },
    "/api/follow-ups": {
        "get": {
            "summary": "Follow-ups by due time",
            "parameters": [
                query("sale_id", ID, "of one sale"),
                query("status", values(FollowUpStatus), "in one status"),
                *PAGING,
            ],
            "responses": answers(
                {"200": ("a page", listing("follow_ups", "FollowUpDetailed"))}, "400"
            ),
        }
    },
    "/api/cases": {
        "get": {
            "summary": "Cases, open ones first, each by its deadline",
            "parameters": [query("status", values(CaseStatus), "in one status"), *PAGING],
            "responses": answers({"200": ("a page", listing("cases", "Case"))}, "400"),
        }
    },
    "/api/customers": {
        "get": {
            "summary": "Customers by id, or found by phone or email",
            "parameters": [
                query("phone", TEXT, "as typed: read in the business's country"),
                query("email", TEXT, "in any case"),
                *PAGING,
            ],
            "responses": answers({"200": ("a page", listing("customers", "Customer"))}, "400"),
        }
    },
    "/api/customers/{customer_id}": {
        "get": {
            "summary": "A customer, their consent and their story",
            "parameters": [path("customer_id", ID, 1)],
            "responses": answers({"200": ("the customer", ref("CustomerWithTimeline"))}, "404"),
        },
        "patch": {
            "summary": "Change a customer's details or consent",
            "parameters": [path("customer_id", ID, 1)],
            "requestBody": body("CustomerChange"),
            "responses": answers(
                {"200": ("changed", ref("CustomerWithTimeline"))},
                "400",
                "404",
                "409",
                "413",
                "422",
            ),
        },
    },
    "/api/cadences": {
        "get": {
            "summary": "Cadences by name, with their steps",
            "parameters": PAGING,
            "responses": answers({"200": ("a page", listing("cadences", "Cadence"))}, "400"),
        }
    },
    "/api/cadences/{name}": {
        "get": {
            "summary": "A cadence and its steps",
            "parameters": [CADENCE_NAME],
            "responses": answers({"200": ("the cadence", ref("Cadence"))}, "404"),
        },
        "put": {
            "summary": "Replace (or create) a cadence; its pending follow-ups are re-planned",
            "parameters": [CADENCE_NAME],
            "requestBody": body("CadenceChange"),
            "responses": answers(
                {"200": ("saved", ref("CadenceSaved")), "201": ("created", ref("CadenceSaved"))},
                "400",
                "404",  # a name with a line break is no address here
                "409",
                "413",
                "422",
            ),
        },
    },
}

SKU = path("sku", {"type": "string", "minLength": 1, "maxLength": 64}, "LAV-9")
PATHS |= {
    "/api/products": {
        "get": {
            "summary": "Products by SKU, with the cadence each follows and why",
            "parameters": PAGING,
            "responses": answers({"200": ("a page", listing("products", "Product"))}, "400"),
        }
    },
    "/api/products/{sku}": {
        "put": {
            "summary": "Change a product (products are made by sales: never creates one)",
            "parameters": [SKU],
            "requestBody": body("ProductChange"),
            "responses": answers({"200": ("changed", ref("Product"))}, "400", "404", "413", "422"),
        }
    },
}

COUNT = {"type": "integer", "minimum": 0}
SHARE = nullable({"type": "number", "minimum": 0, "maximum": 1})
DAY = {"type": "string", "format": "date"}
NPS: dict[str, Any] = {
    "promoters": COUNT,
    "passives": COUNT,
    "detractors": COUNT,
    "ratings": COUNT,
    "score": nullable({"type": "integer", "minimum": -100, "maximum": 100}),
}
BY_STATUS = {status.value: COUNT for status in FollowUpStatus}
SCHEMAS["Stats"] = obj(
    {
        "from": DAY,
        "to": DAY,
        "time_zone": TEXT,
        "cadence": MAYBE_TEXT,
        "product": MAYBE_TEXT,
        "follow_ups": obj(
            BY_STATUS
            | {
                "by_channel": obj({channel.value: obj(BY_STATUS) for channel in Channel}),
                "skipped_because": {"type": "object", "additionalProperties": COUNT},
            }
        ),
        "replies": COUNT,
        "reply_rate": SHARE,
        "replied_within_7_days": obj({"sent": COUNT, "answered": COUNT}),
        "nps": obj(NPS | {"by_week": {"type": "array", "items": obj({"week": DAY} | NPS)}}),
        "cases": obj(
            {
                "opened": COUNT,
                "resolved": COUNT,
                "open_now": COUNT,
                "overdue_now": COUNT,
                "open_by_age": obj({name: COUNT for name, _least, _most in AGES}),
            }
        ),
        "checks": obj({"asked": COUNT, "solved": COUNT, "not_solved": COUNT, "no_answer": COUNT}),
        "opt_outs": obj(
            {
                "customers": COUNT,
                "by_channel": obj({"sms": COUNT, "email": COUNT, "whatsapp": COUNT}),
                "messaged": COUNT,
                "share": SHARE,
            }
        ),
        "first_response_business_minutes": obj(
            {
                "p50": nullable(COUNT),
                "p90": nullable(COUNT),
                "answered": COUNT,
                "on_time_share": SHARE,
            }
        ),
        "remedies": {
            "type": "object",
            "description": "by kind",
            "additionalProperties": obj(
                {
                    "given": COUNT,
                    "value": {"type": "string", "description": "a decimal, such as 150.00"},
                    "needed_owner": COUNT,
                }
            ),
        },
        "steps": {
            "type": "array",
            "items": obj(
                {
                    "cadence": TEXT,
                    "step": TEXT,
                    "sent": COUNT,
                    "delivered": COUNT,
                    "replied": COUNT,
                    "objections": COUNT,
                    "resolved": COUNT,
                }
            ),
        },
    }
)
STATS_OK = answers({"200": ("the figures", ref("Stats"))}, "400")
STATS_OK["200"]["content"]["text/csv"] = {
    "schema": {"type": "string", "description": "`figure,value` lines"}
}
PATHS["/api/stats"] = {
    "get": {
        "summary": "The dashboard's figures for the business's local days `from`..`to`",
        "parameters": [
            query("from", DAY, "first day, included (default: 29 days before `to`)"),
            query("to", DAY, "last day, included (default: today)"),
            query("cadence", TEXT, "only this cadence's follow-ups, replies and ratings"),
            query("product", TEXT, "only the follow-ups, replies and ratings of this SKU's sales"),
            query("format", {"type": "string", "enum": ["json", "csv"]}, "json by default"),
        ],
        "responses": STATS_OK,
    }
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Postventa API",
        "version": "1",
        "description": (
            "Lists are paged: `limit` (1-500, 100 by default) and `cursor`, the `next_cursor` "
            "of the page before (null on the last page). Errors are "
            '`{"errors": [{"field", "message"}]}`.'
        ),
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": SCHEMAS,
    },
    "paths": PATHS,
}


@blueprint.get("/openapi.json")
def openapi_document() -> tuple[Response, int]:
    return jsonify(DOCUMENT), 200
