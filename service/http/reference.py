"""/schema: the OpenAPI document (JSON, YAML) as served for the catalog in use (http/apidoc.py), and the
API reference page, Redoc, run from a bundle that opsgate serves itself (``make redoc`` puts it in
service/http/static/), so the page renders with no internet.

The page's Content-Security-Policy lets it load nothing but from opsgate (Redoc's bundle would show
its vendor's logo from elsewhere), the document inline in the page.
"""

from __future__ import annotations

import base64
import hashlib
import html
from pathlib import Path
from typing import Any

from litestar import Request, get
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, YamlRenderPlugin
from litestar.response import File
from litestar.router import Router

from service.http.apidoc import Published
from service.http.common import runtime

REDOC_BUNDLE = Path(__file__).with_name("static") / "redoc.standalone.js"
BUNDLE_PATH = "/redoc.standalone.js"  # under /schema
_MISSING = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>opsgate API</title></head><body>"
    "<p>The API reference page needs Redoc's bundle, which this installation lacks: run <code>make redoc</code> "
    "(scripts/get-redoc.sh). The document itself: <a href='{json}'>{json}</a>.</p></body></html>"
)


def _document(published: Published, request: Request[Any, Any, Any], base: dict[str, Any]) -> dict[str, Any]:
    return published.document(base, runtime(request.app.state).catalog)


class ServedJson(JsonRenderPlugin):
    def __init__(self, published: Published) -> None:
        super().__init__()
        self.published = published

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, _document(self.published, request, openapi_schema))


class ServedYaml(YamlRenderPlugin):
    def __init__(self, published: Published) -> None:
        super().__init__()
        self.published = published

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, _document(self.published, request, openapi_schema))


class LocalRedoc(OpenAPIRenderPlugin):
    """Redoc at /schema (and /schema/redoc), from opsgate's own copy of its bundle."""

    def __init__(self, published: Published, bundle: Path = REDOC_BUNDLE) -> None:
        super().__init__(path=["/", "/redoc"])
        self.published, self.bundle = published, bundle

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if not self.bundle.is_file():
            return _MISSING.format(json=html.escape(self.get_openapi_json_route(request))).encode()
        document = _document(self.published, request, openapi_schema)
        spec = self.render_json(request, document).replace(b"</", b"<\\/")  # JSON that cannot end the script
        init = b"Redoc.init(" + spec + b",{},document.getElementById('redoc-container'))"
        script_src = request.app.route_reverse(_BUNDLE_HANDLER)
        title = html.escape(str(document["info"]["title"]))
        head = (
            f"<meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{_policy(init)}\">"
            f"<title>{title}</title><link rel='icon' href='data:,'>{self.style}"
            f"<script src='{html.escape(script_src)}'></script>"
        )
        body = b"<body><div id='redoc-container'></div><script>" + init + b"</script></body>"
        return b"<!DOCTYPE html><html><head>" + head.encode() + b"</head>" + body + b"</html>"

    def receive_router(self, router: Router) -> None:
        bundle = self.bundle

        @get(BUNDLE_PATH, name=_BUNDLE_HANDLER, media_type="text/javascript", sync_to_thread=False)
        def redoc_bundle() -> File:
            return File(bundle, content_disposition_type="inline", media_type="text/javascript")

        router.register(redoc_bundle)


_BUNDLE_HANDLER = "opsgate_redoc_bundle"


def _policy(inline_script: bytes) -> str:
    """Only opsgate's own script and this page's inline one; styles inline (Redoc sets them), images as
    data, the search index in a worker made from a blob."""
    digest = base64.b64encode(hashlib.sha256(inline_script).digest()).decode()
    return (
        f"default-src 'none'; script-src 'self' 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src blob:; connect-src 'self'; base-uri 'none'"
    )


def plugins(default_ruleset: str) -> list[OpenAPIRenderPlugin]:
    """The /schema routes: Redoc at the root, the document as JSON and YAML; one cache for the three."""
    published = Published(default_ruleset)
    return [LocalRedoc(published), ServedJson(published), ServedYaml(published)]
