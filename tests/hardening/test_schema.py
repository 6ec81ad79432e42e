"""The HTTP API against its own OpenAPI document, with ``schemathesis`` (issue 22): for every
operation, cases generated from the document, valid ones (positive) and ones that break it
(negative), sent to a real server over a real SQLite store with an admin key. Promises checked on
every case:

* no 5xx (``not_a_server_error``);
* every response matches the document: status, content type and body schema (errors in the
  OpenAI shape, completions in theirs);
* a negative case is refused with a 4xx (``negative_data_rejection``: strict types included);
* a refused request (any 4xx) stores nothing: a digest of every row of every table is the same
  after it as before.

Bounded: ``EXAMPLES`` cases per operation and mode (CI: 15; ``SUPPORTLOOP_SCHEMA_EXAMPLES``
raises it by hand), no shrinking phase unless a case fails, no example database. The counts are
printed and stated in ``docs/reliability.md``.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from tests.hardening.conftest import table_digest

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES = int(os.environ.get("SUPPORTLOOP_SCHEMA_EXAMPLES", "15"))


def _checks(negative: bool) -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    return [*checks, negative_data_rejection] if negative else checks


def _runner(
    operation: Any,
    mode: Any,
    url: str,
    auth: dict[str, str],
    database: Path,
    cases: Counter[str],
    refused_with_a_write: list[str],
) -> Any:
    negative = mode.name == "NEGATIVE"
    checks = _checks(negative)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        before = table_digest(database)
        response = case.call(base_url=url, headers=auth, timeout=30)
        case.validate_response(response, checks=checks)
        if 400 <= response.status_code < 500 and table_digest(database) != before:
            refused_with_a_write.append(f"{case.method} {case.path} -> {response.status_code}")
        cases[f"{case.method} {case.path} {'negative' if negative else 'positive'}"] += 1

    return run


def test_every_operation_against_the_openapi_document(make_api, home: Path, capsys) -> None:
    from schemathesis import GenerationMode

    api = make_api(auth_cache_s=3600.0, max_body_bytes=200_000)
    auth = {"Authorization": f"Bearer {api.admin_key}"}
    with api.http(api.admin_key) as http:
        assert http.get("/v1/conversations").status_code == 200  # last_used_at written now, once
    database = home / "supportloop.db"
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    cases: Counter[str] = Counter()
    refused_with_a_write: list[str] = []
    unbreakable: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            negative = mode is GenerationMode.NEGATIVE
            has_input = bool(list(operation.iter_parameters())) or bool(operation.body)
            if negative and not has_input:
                continue  # nothing to break
            run = _runner(operation, mode, api.url, auth, database, cases, refused_with_a_write)
            try:
                run()
            except Unsatisfiable:  # a string path parameter has no value that breaks its schema
                assert negative, f"{operation.method} {operation.path}: no valid case"
                unbreakable.append(f"{operation.method.upper()} {operation.path}")

    total = sum(cases.values())
    with capsys.disabled():
        print(
            f"\nschemathesis: {total} cases over {len(cases)} operation x mode pairs, {EXAMPLES} each at most"
        )
        print(f"no negative case possible: {unbreakable}")
    assert refused_with_a_write == []
    operations = {name.rsplit(" ", 1)[0] for name in cases}
    assert len(operations) == 14 and len(cases) == 19  # every operation; negative where it has input
    assert total >= 10 * EXAMPLES  # operations without input give one distinct case each


def test_the_reliability_doc_states_the_ci_case_count() -> None:
    from tests.conftest import REPO

    doc = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    assert "| CI (`SUPPORTLOOP_SCHEMA_EXAMPLES` unset) | **15** |" in doc
    assert int(os.environ.get("SUPPORTLOOP_SCHEMA_EXAMPLES", "15")) >= 15
