"""What the audience side's form endpoints share: reading the form off the event loop, and the client's address."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response


def with_form(handler: Callable[[Request, Any], Response]) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that reads the form on the event loop, then does its database and SMTP work off it."""
    async def endpoint(request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(handler, request, form)
    return endpoint


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""
