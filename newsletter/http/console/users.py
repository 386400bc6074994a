"""`/admin/users`: the console's accounts, an admin's to see and change.

Every account with its role, last login and lock; add one (the admin types the first password and hands it over),
change a role, set a new password (the account's sessions end, a lock lifts), lift a lock, remove one (after a
confirmation page). All through `feeds.core.accounts.Accounts`, whose rules stand whoever asks: the last admin can be
neither removed nor demoted (`LastAdmin`, 409). Each change is in the audit log, never a password.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from feeds.core.accounts import AccountError, Accounts, UnknownUser, User
from feeds.core.http import RowId
from feeds.settings import Settings

from .kit import ConsoleKit, acting, posted


class UsersPages:
    def __init__(self, kit: ConsoleKit, settings: Settings, accounts: Accounts) -> None:
        self.kit = kit
        self.settings = settings
        self.accounts = accounts

    def router(self) -> APIRouter:
        kit = self.kit
        api = APIRouter(prefix="/admin/users", include_in_schema=False)
        read, change = [Depends(kit.admin)], [Depends(kit.admin_form)]
        api.add_api_route("", self.list, methods=["GET"], dependencies=read)
        api.add_api_route("", self.add, methods=["POST"], dependencies=change)
        api.add_api_route("/{user_id}/role", self.set_role, methods=["POST"], dependencies=change)
        api.add_api_route("/{user_id}/password", self.reset_password, methods=["POST"], dependencies=change)
        api.add_api_route("/{user_id}/unlock", self.unlock, methods=["POST"], dependencies=change)
        api.add_api_route("/{user_id}/remove", self.confirm_remove, methods=["GET"], dependencies=read)
        api.add_api_route("/{user_id}/remove", self.remove, methods=["POST"], dependencies=change)
        return api

    def _when(self, moment: datetime | None) -> str:
        return moment.astimezone(self.settings.site.timezone).strftime("%Y-%m-%d %H:%M") if moment else "-"

    def _found(self, user_id: int) -> User:
        user = next((u for u in self.accounts.users() if u.id == user_id), None)
        if user is None:
            raise UnknownUser(f"no account {user_id}")
        return user

    def list(self, request: Request, error: str | None = None, status: int = 200,
             values: dict[str, Any] | None = None) -> Response:
        now = self.kit.clock()
        return self.kit.page(request, acting(request), "console/users.html", status=status, error=error,
                             users=self.accounts.users(), values=values or {"email": "", "role": "viewer"},
                             is_locked=lambda u: u.locked_until is not None and u.locked_until > now, when=self._when)

    def add(self, request: Request) -> Response:
        actor, form = acting(request), posted(request)
        email, role = str(form.get("email") or ""), str(form.get("role") or "")
        try:
            user = self.accounts.add(email, role, str(form.get("password") or ""))
        except AccountError as exc:
            return self.list(request, error=str(exc), status=exc.status, values={"email": email[:320], "role": role})
        self.kit.audit.record(actor, "user.create", f"user:{user.email}", after={"role": user.role})
        return self.kit.redirect("/admin/users", flash="console_flash_user_added")

    def set_role(self, request: Request, user_id: RowId) -> Response:
        actor, form = acting(request), posted(request)
        user = self._found(user_id)
        try:
            before, after = self.accounts.set_role(user.email, str(form.get("role") or ""))
        except AccountError as exc:
            return self.list(request, error=str(exc), status=exc.status)
        if before.role != after.role:
            self.kit.audit.record(actor, "user.role", f"user:{after.email}", before={"role": before.role},
                                  after={"role": after.role})
        return self.kit.redirect("/admin/users", flash="console_flash_user_saved")

    def reset_password(self, request: Request, user_id: RowId) -> Response:
        actor, form = acting(request), posted(request)
        user = self._found(user_id)
        try:
            self.accounts.reset_password(user.email, str(form.get("password") or ""))
        except AccountError as exc:
            return self.list(request, error=str(exc), status=exc.status)
        self.kit.audit.record(actor, "user.reset_password", f"user:{user.email}")
        if user.id == actor.user_id:  # one's own sessions ended with the reset, this one too
            response = self.kit.redirect("/admin/login", flash="console_flash_password_changed")
            self.kit.end_session(response)
            return response
        return self.kit.redirect("/admin/users", flash="console_flash_user_password")

    def unlock(self, request: Request, user_id: RowId) -> Response:
        actor = acting(request)
        user = self._found(user_id)
        self.accounts.unlock(user.email)
        self.kit.audit.record(actor, "user.unlock", f"user:{user.email}",
                              before={"locked_until": user.locked_until, "failed_logins": user.failed_logins})
        return self.kit.redirect("/admin/users", flash="console_flash_user_unlocked")

    def confirm_remove(self, request: Request, user_id: RowId) -> Response:
        return self.kit.page(request, acting(request), "console/user_remove.html", user=self._found(user_id),
                             when=self._when)

    def remove(self, request: Request, user_id: RowId) -> Response:
        actor = acting(request)
        user = self._found(user_id)
        try:
            self.accounts.remove(user.email)
        except AccountError as exc:
            return self.list(request, error=str(exc), status=exc.status)
        self.kit.audit.record(actor, "user.remove", f"user:{user.email}", before={"role": user.role})
        if user.id == actor.user_id:
            response = self.kit.redirect("/admin/login")
            self.kit.end_session(response)
            return response
        return self.kit.redirect("/admin/users", flash="console_flash_user_removed")
