"""`/admin`: the console's home."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from .kit import ConsoleKit, acting


class HomePage:
    def __init__(self, kit: ConsoleKit) -> None:
        self.kit = kit

    def router(self) -> APIRouter:
        api = APIRouter(include_in_schema=False)
        api.add_api_route("/admin", self.show, methods=["GET"], dependencies=[Depends(self.kit.viewer)])
        return api

    def show(self, request: Request) -> Response:
        return self.kit.page(request, acting(request), "console/home.html")
