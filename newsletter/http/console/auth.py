"""Logging in and out of the console: `/admin/login`, `/admin/logout`, `/admin/logout-everywhere`.

The login form carries its own CSRF token before any session exists: a random nonce in a short-lived cookie, and
the same nonce signed in the form (a page on another site can set neither). Attempts are limited per client
address (`LOGINS_PER_IP`) besides the account's own lock (`feeds.core.accounts`: `MAX_FAILURES` wrong passwords in
a row lock it for `LOCK_FOR`). The answer to a wrong address and to a wrong password is the same.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from fastapi import APIRouter, Depends, Request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

import templates as ui
from feeds.core.accounts import Accounts, Actor, LoggedIn, actor_of
from feeds.core.http import SESSION_COOKIE
from feeds.core.limits import Limits

from ..forms import client_ip
from .kit import ConsoleKit, acting, safe_next

LOGIN_COOKIE = "gazette_login"
LOGIN_FORM_AGE = 3600  # seconds a login form stays usable
LOGINS_PER_IP = (10, timedelta(minutes=5))


class LoginPages:
    def __init__(self, kit: ConsoleKit, accounts: Accounts, limits: Limits | None = None) -> None:
        self.kit = kit
        self.accounts = accounts
        self.signer = TimestampSigner(kit.settings.signing_key, salt="gazette.console-login")
        self.limiter = (limits or Limits(kit.clock)).limiter("console-login", *LOGINS_PER_IP)

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/admin", include_in_schema=False)
        api.add_api_route("/login", self.login_form, methods=["GET"])
        api.add_api_route("/login", self.log_in, methods=["POST"])
        api.add_api_route("/logout", self.log_out, methods=["POST"], dependencies=[Depends(self.kit.form)])
        api.add_api_route("/logout-everywhere", self.log_out_everywhere, methods=["POST"],
                          dependencies=[Depends(self.kit.form)])
        return api

    def login_form(self, request: Request) -> Response:
        if self.kit.actor(request) is not None:
            return self.kit.redirect(safe_next(request.query_params.get("next", "/admin")))
        return self._form(request)

    def _form(self, request: Request, *, error: str | None = None, email: str = "", status: int = 200) -> Response:
        nonce = secrets.token_urlsafe(24)
        response = self.kit.page(request, None, "console/login.html", status=status, error=error, email=email,
                                 login_token=self.signer.sign(nonce).decode(),
                                 next=safe_next(request.query_params.get("next", "/admin")))
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_FORM_AGE, httponly=True, samesite="strict",
                            secure=self.kit.secure_cookies, path="/admin")
        return response

    async def log_in(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        t = ui.words(self.kit.language(request))
        email, password = str(form.get("email") or "")[:320], str(form.get("password") or "")
        if not self._nonce_ok(request, form):
            return self._form(request, error=t["console_login_expired"], email=email, status=403)
        limited = await run_in_threadpool(self.limiter.hit, client_ip(request))  # may ask Redis
        if limited:
            response = self._form(request, error=t["console_login_too_many"], email=email, status=429)
            response.headers["Retry-After"] = str(limited)
            return response
        outcome = await run_in_threadpool(self.accounts.log_in, email, password, request.headers.get("user-agent"))
        if not isinstance(outcome, LoggedIn):
            if outcome.locked_now:
                await run_in_threadpool(self.kit.audit.record, Actor("system", email[:320], "viewer"),
                                        "user.locked", f"user:{email[:280]}",
                                        after={"locked_until": outcome.locked_until})
            if outcome.locked_until is not None:
                message = t["console_login_locked"]
            else:
                message = t["console_login_wrong"]
            return self._form(request, error=message, email=email, status=401)
        await run_in_threadpool(self.kit.audit.record, actor_of(outcome.session), "user.login",
                                f"user:{outcome.session.user.email}")
        response = self.kit.redirect(safe_next(str(form.get("next") or "/admin")))
        self.kit.set_session(response, outcome.secret)
        response.delete_cookie(LOGIN_COOKIE, path="/admin")
        return response

    def _nonce_ok(self, request: Request, form: FormData) -> bool:
        nonce, token = request.cookies.get(LOGIN_COOKIE), form.get("login_token")
        if not nonce or not isinstance(token, str):
            return False
        try:
            signed = self.signer.unsign(token, max_age=LOGIN_FORM_AGE).decode()
        except (BadSignature, SignatureExpired, UnicodeDecodeError):
            return False
        return hmac.compare_digest(signed.encode(), nonce.encode())

    def log_out(self, request: Request) -> Response:
        secret = self.kit.access.secret_of(request.cookies.get(SESSION_COOKIE))
        if secret is not None:
            self.accounts.log_out(secret)
        self.kit.audit.record(acting(request), "user.logout", f"user:{acting(request).email}")
        response = self.kit.redirect("/admin/login", flash="console_flash_logged_out")
        self.kit.end_session(response)
        return response

    def log_out_everywhere(self, request: Request) -> Response:
        actor = acting(request)
        assert actor.user_id is not None  # a console session's actor
        ended = self.accounts.log_out_everywhere(actor.user_id)
        self.kit.audit.record(actor, "user.logout_everywhere", f"user:{actor.email}", after={"sessions_ended": ended})
        response = self.kit.redirect("/admin/login", flash="console_flash_logged_out_everywhere")
        self.kit.end_session(response)
        return response
