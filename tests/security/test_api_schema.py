"""The admin API against its own OpenAPI document (schemathesis, in-process over ASGI), bounded so that `make test`
stays quick: with the admin token, no server error and no status code the document does not declare; without a
token or with a wrong one, only 401 (problem details), whatever the request holds.

A schemathesis run like this one found 89 server errors before (integers past 2^63, a NUL reaching PostgreSQL).
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import Clock
from tests.security.conftest import ADMIN

EXAMPLES = 120  # per operation: about 2,000 requests for the whole API


class LifespanRunElsewhere:
    """The app with its lifespan answered here: `InProcessClient` runs the real one, once, whatever schemathesis
    does with lifespans."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return


@pytest.fixture(scope="module")
def api_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app over a fresh database, running; schemathesis calls it in-process."""
    import service

    from newsletter.settings import load_settings
    from tests.conftest import InProcessClient, write_config
    from tests.security.conftest import EXTRA, NOW, stored_article

    folder = tmp_path_factory.mktemp("api")
    settings = load_settings(write_config(folder / "gazette.toml", database_url=f"sqlite:///{folder / 'g.db'}",
                                          mail_url=f"maildir://{folder / 'outbox'}", extra=EXTRA), {})
    services = service.Components(settings, clock=Clock())
    services.prepare_database(migrate=True)
    services.store.upsert_articles([stored_article(n) for n in (1, 2, 3)], source_id=None, now=NOW)
    app = service.create_app(services)
    with InProcessClient(app):
        yield LifespanRunElsewhere(app)
    services.close()


@pytest.fixture(scope="module")
def api_schema(api_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/api/openapi.json", api_app)


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_no_server_error_and_no_undocumented_status(api_schema: Any) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import status_code_conformance

    found = operations(api_schema)
    assert len(found) >= 15
    for operation in found:
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(headers=ADMIN, checks=[not_a_server_error, status_code_conformance])

        run()


def test_without_the_token_only_401(api_schema: Any) -> None:
    for operation in operations(api_schema):
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            for authorization in (None, "Bearer wrong-token-0123456789", "Basic YWRtaW46YWRtaW4=", "Bearer "):
                response = case.call(headers={"Authorization": authorization} if authorization else {})
                assert response.status_code == 401, (case.method, case.path, authorization, response.status_code,
                                                     response.text[:200])
                assert response.headers["content-type"][0] == "application/problem+json"

        run()
