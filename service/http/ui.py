"""Reviewer pages under /ui: server-rendered HTML over the same calls as the JSON API."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie, State
from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from service.auth.sessions import LOGIN_COOKIE, SESSION_COOKIE
from service.domain.redaction import redacted_paths
from service.errors import DecisionLogError, LoginRequired, OpsgateError, Problem
from service.http import guard, worklist
from service.http.charts import duration
from service.http.common import fleet, runtime
from service.http.guard import roles
from service.http.queries import decision_query
from service.usecases.status import STATUSES

log = guard.log


def _csrf_token(context: Mapping[str, Any]) -> str:
    """The hidden field every form posts: the session's CSRF token (empty in open mode)."""
    request = context["request"]
    session = guard.session_of(request)
    keys = guard.auth_of(request)
    return keys.csrf_token(session) if keys is not None and session is not None else ""


def _signed_in(context: Mapping[str, Any]) -> str:
    session = guard.session_of(context["request"])
    return session.key.name if session is not None else ""


def _may_approve(context: Mapping[str, Any]) -> bool:
    """Whether the viewer may answer the approval queue (the forms are shown only then)."""
    request = context["request"]
    keys = guard.auth_of(request)
    key = guard.authenticated(request)
    return keys is None or keys.open or (key is not None and key.may(("approve",)))


def _template_callables(engine: JinjaTemplateEngine) -> None:
    engine.register_template_callable("csrf_token", _csrf_token)
    engine.register_template_callable("signed_in", _signed_in)
    engine.register_template_callable("may_approve", _may_approve)
    engine.engine.filters["duration"] = duration


TEMPLATES = TemplateConfig(
    directory=Path(__file__).parent / "templates", engine=JinjaTemplateEngine, engine_callback=_template_callables
)

#: the filters of the decision list, in the order the form shows them
FILTERS = ("since", "until", "ruleset", "decision_type", "status", "org_id", "rule", "denied_by", "caller")


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect("/ui/decisions")


@get("/decisions", include_in_schema=False)
async def decisions_page(request: Request[Any, Any, Any], state: State) -> Template:
    params = {k: v for k, v in request.query_params.items() if v}
    page = await runtime(state).review.query(decision_query(params))
    filters = {name: params.get(name, "") for name in FILTERS}
    more = {**params, "cursor": page["next_cursor"]} if page["next_cursor"] else None
    context = {"page": page, "filters": filters, "more": more, "statuses": STATUSES}
    return Template("decisions.html", context=context)


async def _decision_context(state: State, decision_id: str) -> dict[str, Any]:
    review = runtime(state).review
    shown = await review.reviewed(decision_id)
    snippets = await review.snippets(shown.record)
    redacted = redacted_paths(shown.record.facts)
    deliveries = await runtime(state).log.outbox.of_decision(decision_id)  # the actions queued for executors
    return {"shown": shown, "record": shown.record, "snippets": snippets, "replay": None, "redacted": redacted,
            "deliveries": deliveries}  # fmt: skip


@get("/decisions/{decision_id:str}", include_in_schema=False)
async def decision_page(state: State, decision_id: str) -> Template:
    return Template("decision.html", context=await _decision_context(state, decision_id))


@post("/decisions/{decision_id:str}/replay", include_in_schema=False, status_code=200)
async def replay_page(state: State, decision_id: str) -> Template:
    context = await _decision_context(state, decision_id)
    context["replay"] = await runtime(state).review.replay(decision_id)
    return Template("decision.html", context=context)


@get("/rulesets", include_in_schema=False)
async def versions_page(state: State) -> Template:
    listing = await runtime(state).review.versions()
    return Template("rulesets.html", context={"listing": listing, "workers": fleet(state).workers()})


@get("/rulesets/diff", include_in_schema=False)
async def diff_page(state: State, a: str, b: str) -> Template:
    text = await runtime(state).review.diff(a, b)
    return Template("diff.html", context={"a": a, "b": b, "lines": text.splitlines()})


@get("/rulesets/{version:str}", include_in_schema=False)
async def version_page(state: State, version: str) -> Template:
    return Template("version.html", context={"version": await runtime(state).review.version(version)})


def _error_page(status: int, message: str, problems: list[Problem], headers: dict[str, str] | None = None) -> Template:
    context = {"status": status, "message": message, "problems": problems}
    return Template("error.html", context=context, status_code=status, media_type=MediaType.HTML, headers=headers)


def _opsgate_error_page(_: Request[Any, Any, Any], error: OpsgateError) -> Template:
    return _error_page(error.status, error.message, error.problems, error.headers())  # e.g. Retry-After


def _http_error_page(_: Request[Any, Any, Any], error: HTTPException) -> Template:
    return _error_page(error.status_code, str(error.detail), [])


def _to_login(request: Request[Any, Any, Any], _: LoginRequired) -> Redirect:
    """A page asked for without a session: the login form, coming back to the page after."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Redirect(f"/ui/login?next={quote(back)}" if request.method == "GET" else "/ui/login", status_code=303)


def _back_to(target: object) -> str:
    """Where the login form returns: a reviewer page of this server, never another site."""
    if isinstance(target, str) and target.startswith("/ui/") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and not target.startswith("/ui/login"):
            return target
    return "/ui/decisions"


def _login_page(request: Request[Any, Any, Any], back: str, error: str = "", status: int = 200) -> Template:
    """The login form, with a fresh nonce cookie whose signature the form carries (login CSRF)."""
    keys = guard.auth_of(request)
    nonce = secrets.token_urlsafe(16)
    context = {"open": keys is None or keys.open, "next": back, "error": error,
               "token": keys.login_token(nonce) if keys else ""}  # fmt: skip
    cookie = Cookie(key=LOGIN_COOKIE, value=nonce, path="/ui/login", max_age=3600, httponly=True, samesite="strict",
                    secure=bool(keys and keys.secure_cookie))  # fmt: skip
    return Template("login.html", context=context, status_code=status, cookies=[cookie], media_type=MediaType.HTML)


@get("/login", include_in_schema=False, opt={"roles": ()})
async def login_form(request: Request[Any, Any, Any], next: str = "") -> Template:  # noqa: A002 - the query name
    return _login_page(request, _back_to(next))


@post("/login", include_in_schema=False, opt={"roles": ()}, status_code=303)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    keys = guard.auth_of(request)
    form = await request.form()
    back = _back_to(form.get("next"))
    if keys is None or keys.open:
        return Redirect(back, status_code=303)
    keys.check_token(keys.login_token(request.cookies.get(LOGIN_COOKIE, "")), form.get("csrf_token"))
    key = keys.authenticate(str(form.get("key", "")).strip())
    if key is None:
        log.warning("401 unknown key: POST /ui/login")
        return _login_page(request, back, "Unknown API key.", 401)
    if not key.may(("audit", "approve")):
        log.warning("403 key %r: POST /ui/login (no audit or approve role)", key.name)
        message = f"The key {key.name!r} has no audit or approve role: the pages need audit, approve or admin."
        return _login_page(request, back, message, 403)
    if back == "/ui/decisions" and not key.may(("audit",)):
        back = "/ui/pending"  # an approver's page: the decision list needs audit
    log.info("key %r signed in to the reviewer pages", key.name)
    session = Cookie(key=SESSION_COOKIE, value=keys.new_session(key), path="/ui", max_age=int(keys.session_ttl_s),
                     httponly=True, samesite="strict", secure=keys.secure_cookie)  # fmt: skip
    redirect = Redirect(back, status_code=303, cookies=[session])
    redirect.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return redirect


@post("/logout", include_in_schema=False, opt={"roles": ()}, status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    keys = guard.auth_of(request)
    session = keys.session(request.cookies.get(SESSION_COOKIE)) if keys else None
    if keys is None or keys.open:
        return Redirect("/ui/decisions", status_code=303)
    if session is not None:
        keys.check_token(keys.csrf_token(session), (await request.form()).get("csrf_token"))
        try:
            await keys.sign_out(session)  # a copy of the cookie is refused too, not only this browser's
        except DecisionLogError as error:  # the browser's cookie still goes, and this process refuses copies
            log.error("key %r signed out, but the decision log did not record it (%s): other workers "
                      "accept a copy of the cookie until it expires", session.key.name, error.message)  # fmt: skip
        else:
            log.info("key %r signed out of the reviewer pages", session.key.name)
    redirect = Redirect("/ui/login", status_code=303)
    redirect.delete_cookie(SESSION_COOKIE, path="/ui")
    return redirect


ROUTES = [
    Router(
        path="/ui",
        route_handlers=[
            home,
            decisions_page,
            decision_page,
            replay_page,
            versions_page,
            diff_page,
            version_page,
            *worklist.ROUTES,
            login_form,
            login,
            logout,
        ],  # fmt: skip
        exception_handlers={
            OpsgateError: _opsgate_error_page,
            HTTPException: _http_error_page,
            LoginRequired: _to_login,
        },
        opt={**roles("audit"), "session": True},  # every page needs audit (or admin), by key or session cookie
    )
]
