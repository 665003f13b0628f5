"""The OpenAPI document describes every route under /api and nothing else, and anyone can read
it (it holds no data)."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from web.api_document import DOCUMENT

VERBS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def test_the_document_and_the_routes_under_api_are_the_same(app: Flask) -> None:
    routes = {
        (verb.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for verb in (rule.methods or set()) & VERBS
    }
    documented = {(verb, path) for path, ops in DOCUMENT["paths"].items() for verb in ops}
    assert routes == documented
    assert len(routes) >= 11


def test_every_path_parameter_of_the_document_is_in_its_path() -> None:
    for path, ops in DOCUMENT["paths"].items():
        for verb, operation in ops.items():
            named = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert named == set(re.findall(r"\{(\w+)\}", path)), (verb, path)
            assert "200" in operation["responses"] or "201" in operation["responses"]


def test_the_document_is_public_and_the_rest_needs_a_token(client: FlaskClient) -> None:
    answer = client.get("/api/openapi.json")
    assert answer.status_code == 200 and answer.get_json() == DOCUMENT
    assert answer.get_json()["openapi"] == "3.1.0"
    assert client.get("/api/cadences").status_code == 401
