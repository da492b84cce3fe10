"""Schemathesis over the API's own OpenAPI description: every operation, valid and invalid input, as
a signed-in admin. No answer may be a 5xx or break the schema it documents; anonymous, every
operation is refused."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.conftest import make_settings
from tests.factories import make_user
from tests.web import dash_headers, sign_in_and_enrol

#: Cases Hypothesis generates per operation and mode (valid input, then invalid input).
CASES_PER_OPERATION = 50

#: Two checks are left out, each for its reason:
#: - "schema-valid input is accepted": rules across fields (the end after the start, a range of at
#:   most three years, each job kind's own parameters) and "no NUL in text" cannot be said in JSON
#:   Schema, so input the document allows may still get a 422 that names the field.
#: - "invalid authentication is refused": the check replays a case without its credentials, but the
#:   signed-in cookie is given to every call here, so the replay still carries it; the test below
#:   proves every operation refuses an anonymous caller.
EXCLUDED_CHECKS = [positive_data_acceptance, ignored_auth]


@pytest.fixture()
def fuzzed_app(db_url, tmp_path, moto):  # type: ignore[no-untyped-def]
    from dashapp import create_app
    from dashapp.extensions import limiter

    app = create_app(make_settings(db_url, tmp_path, RATE_LIMIT_API="1000000/h", AWS_ENDPOINT_URL=moto))
    limiter.reset()
    return app


@pytest.fixture()
def admin_headers(fuzzed_app):  # type: ignore[no-untyped-def]
    from services import database

    client = fuzzed_app.test_client()
    with database.session_scope() as session:
        make_user(session, username="fuzz", roles=("admin",))
    sign_in_and_enrol(client, "fuzz")
    cookies = {name: client.get_cookie(name).value for name in ("finops_session", "_csrf_token")}
    return {"cookies": cookies, "headers": dash_headers(client)}


def _schema(app):  # type: ignore[no-untyped-def]
    with app.app_context():
        document = app.api_doc
    schema = schemathesis.openapi.from_dict(document)
    schema.app = app
    # The session cookie comes from a real sign-in (admin_headers), not from generated values; the
    # anonymous caller has a test of its own below.
    schema.config.generation.update(with_security_parameters=False)
    return schema


def _fuzz(operation, mode, headers) -> int:  # type: ignore[no-untyped-def]
    """Run Hypothesis' cases for one operation; return how many it tried."""
    tried = [0]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=CASES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case):  # type: ignore[no-untyped-def]
        tried[0] += 1
        case.call_and_validate(**headers, excluded_checks=EXCLUDED_CHECKS)

    run()
    return tried[0]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_a_server_error_or_breaks_its_schema(fuzzed_app, admin_headers, backend, mode):
    if backend == "sqlite":
        pytest.skip("once is enough: PostgreSQL is the stricter store (NUL, lengths, integer range)")
    failures: list[str] = []
    cases: dict[str, int] = {}
    operations = [result.ok() for result in _schema(fuzzed_app).get_all_operations()]
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        try:
            cases[label] = _fuzz(operation, mode, admin_headers)
        except Unsatisfiable:
            # An operation with no parameters and no body has no invalid input to generate.
            assert mode is GenerationMode.NEGATIVE, label
            continue
        except Exception as exc:  # noqa: BLE001 - every operation is tried; all failures are reported together
            failures.append(f"{label}: {str(exc)[:1500]}")
    summary = (f"schemathesis {mode.value}: {len(operations)} operations, {sum(cases.values())} cases, "
               f"{len(failures)} failing operations")
    print(summary)  # noqa: T201 - the figures this test is for (seen with -s)
    assert not failures, "\n\n".join(failures)
    assert len(operations) >= 19 and sum(cases.values()) >= 10 * len(operations)


def test_every_operation_refuses_an_anonymous_caller(fuzzed_app):
    with fuzzed_app.app_context():
        document = fuzzed_app.api_doc
    client = fuzzed_app.test_client()
    refused = []
    for path, operations in document["paths"].items():
        concrete = path.replace("{", "").replace("}", "").replace("profile_id", "1").replace(
            "task_id", "1").replace("schedule_id", "1")
        for method in operations:
            response = client.open(concrete, method=method.upper())
            assert response.status_code == 401, f"{method.upper()} {path} answered {response.status_code}"
            assert response.mimetype == "application/problem+json"
            refused.append(f"{method} {path}")
    assert len(refused) >= 19
