"""The API run against its own OpenAPI document (schemathesis, in-process through WSGI): every
operation, with data that fits the document and data that does not, answers without a 5xx and
exactly as the document says (status, content type, body schema)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from flask import Flask
from freezegun import freeze_time
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from scheduler.config import Config
from tests.api_calls import bearer, shop
from tests.factories import NOW
from web.api_document import DOCUMENT

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
REAL = {"customer_id": 2, "sale_id": 2, "name": "Default", "sku": "LAV-9"}  # rows shop() makes
# Examples per operation: enough to find what breaks, few enough for the run to take seconds.
EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 6}


def _runner(
    case_strategy: SearchStrategy[schemathesis.Case[Any]], examples: int
) -> Callable[[], None]:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=case_strategy)
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS)

    return run


def test_every_operation_answers_as_its_document_says(
    app: Flask, session: Session, config: Config, token: str
) -> None:
    with freeze_time(NOW):
        shop(session, config)
        schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        documented = {
            f"{verb.upper()} {path}" for path, ops in DOCUMENT["paths"].items() for verb in ops
        }
        # The document's own address is where schemathesis read it, not an operation it runs.
        assert {op.label for op in operations} == documented - {"GET /api/openapi.json"}
        for operation in operations:
            for mode, examples in EXAMPLES.items():
                strategy = operation.as_strategy(generation_mode=mode, headers=bearer(token))
                _runner(strategy, examples)()
            names = {parameter.name for parameter in operation.path_parameters}
            if names:  # random ids seldom meet a row: these do
                real = {name: REAL[name] for name in names}
                strategy = operation.as_strategy(headers=bearer(token), path_parameters=real)
                _runner(strategy, EXAMPLES[GenerationMode.POSITIVE])()
