"""`/admin/account`: one's own account: the role, open sessions, "log out everywhere", a new password."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

import templates as ui
from feeds.core.accounts import AccountError, Accounts

from .kit import ConsoleKit, acting, posted


class AccountPage:
    def __init__(self, kit: ConsoleKit, accounts: Accounts) -> None:
        self.kit = kit
        self.accounts = accounts

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/admin/account", include_in_schema=False)
        api.add_api_route("", self.show, methods=["GET"], dependencies=[Depends(self.kit.viewer)])
        api.add_api_route("/password", self.change_password, methods=["POST"], dependencies=[Depends(self.kit.form)])
        return api

    def show(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        actor = acting(request)
        return self.kit.page(request, actor, "console/account.html", status=status, error=error,
                             sessions=self.accounts.sessions(actor.user_id) if actor.user_id is not None else 0)

    def change_password(self, request: Request) -> Response:
        actor, form = acting(request), posted(request)
        t = ui.words(self.kit.language(request))
        try:
            changed = self.accounts.change_password(actor.email, str(form.get("current") or ""),
                                                    str(form.get("new") or ""))
        except AccountError as exc:
            return self.show(request, error=str(exc), status=422)
        if not changed:
            return self.show(request, error=t["console_account_wrong_current"], status=422)
        self.kit.audit.record(actor, "user.password_change", f"user:{actor.email}")
        response = self.kit.redirect("/admin/login", flash="console_flash_password_changed")  # every session ended, this one too
        self.kit.end_session(response)
        return response
