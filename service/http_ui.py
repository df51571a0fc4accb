"""Reviewer pages under /ui: server-rendered HTML over the same calls as the JSON API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Router, get, post
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from service.errors import OpsgateError, Problem
from service.http_common import runtime

TEMPLATES = TemplateConfig(directory=Path(__file__).parent / "templates", engine=JinjaTemplateEngine)

#: the filters of the decision list, in the order the form shows them
FILTERS = ("since", "until", "ruleset", "decision_type", "status", "org_id", "rule", "denied_by", "caller")


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect("/ui/decisions")


@get("/decisions", include_in_schema=False)
async def decisions_page(request: Request[Any, Any, Any], state: State) -> Template:
    params = {k: v for k, v in request.query_params.items() if v}
    page = await runtime(state).review.query(params)
    filters = {name: params.get(name, "") for name in FILTERS}
    more = {**params, "cursor": page["next_cursor"]} if page["next_cursor"] else None
    return Template("decisions.html", context={"page": page, "filters": filters, "more": more})


async def _decision_context(state: State, decision_id: str) -> dict[str, Any]:
    review = runtime(state).review
    shown = await review.decision(decision_id)
    snippets = await review.snippets(shown["record"])
    return {"shown": shown, "record": shown["record"], "snippets": snippets, "replay": None}


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
    return Template("rulesets.html", context={"listing": await runtime(state).review.versions()})


@get("/rulesets/diff", include_in_schema=False)
async def diff_page(state: State, a: str, b: str) -> Template:
    text = await runtime(state).review.diff(a, b)
    return Template("diff.html", context={"a": a, "b": b, "lines": text.splitlines()})


@get("/rulesets/{version:str}", include_in_schema=False)
async def version_page(state: State, version: str) -> Template:
    return Template("version.html", context={"version": await runtime(state).review.version(version)})


def _error_page(status: int, message: str, problems: list[Problem]) -> Template:
    context = {"status": status, "message": message, "problems": problems}
    return Template("error.html", context=context, status_code=status, media_type=MediaType.HTML)


def _opsgate_error_page(_: Request[Any, Any, Any], error: OpsgateError) -> Template:
    return _error_page(error.status, error.message, error.problems)


def _http_error_page(_: Request[Any, Any, Any], error: HTTPException) -> Template:
    return _error_page(error.status_code, str(error.detail), [])


ROUTES = [
    Router(
        path="/ui",
        route_handlers=[home, decisions_page, decision_page, replay_page, versions_page, diff_page, version_page],
        exception_handlers={OpsgateError: _opsgate_error_page, HTTPException: _http_error_page},
    )
]
