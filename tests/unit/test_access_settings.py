"""Who is believed about the client's address (the trusted proxies) and which posts must be JSON."""

from __future__ import annotations

import pytest

from service.cli.main import _settings, build_parser
from service.errors import OpsgateError
from service.http.media import takes_json
from service.http.server import forwarded
from service.settings import Settings, from_env


def test_by_default_no_proxy_is_trusted_not_even_loopback() -> None:
    assert Settings().trusted_proxies == ""
    assert forwarded(Settings()) == {"proxy_headers": False}


def test_the_trusted_proxies_come_from_the_environment_or_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env({"OPSGATE_TRUSTED_PROXIES": " 10.0.0.2, 10.1.0.0/16 ,::1"})
    assert settings.trusted_proxies == "10.0.0.2,10.1.0.0/16,::1"
    assert forwarded(settings) == {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.2,10.1.0.0/16,::1"}
    monkeypatch.setenv("OPSGATE_TRUSTED_PROXIES", "10.0.0.2")
    assert _settings(build_parser().parse_args(["serve", "--trusted-proxies", "*"])).trusted_proxies == "*"


def test_a_trusted_proxy_that_is_not_an_address_is_refused_by_name() -> None:
    with pytest.raises(OpsgateError) as caught:
        from_env({"OPSGATE_TRUSTED_PROXIES": "10.0.0.2,proxy.local"})
    assert caught.value.message.startswith("OPSGATE_TRUSTED_PROXIES='10.0.0.2,proxy.local' is invalid: ")
    assert "proxy.local" in caught.value.message
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--trusted-proxies", "10.0.0.300"])


@pytest.mark.parametrize(
    ("method", "path", "json_only"),
    [
        ("POST", "/decide", True),
        ("POST", "/admin/rollback", True),
        ("POST", "/operations/decisions/x/execute", True),
        ("POST", "/decisions/x/outcome", True),
        ("POST", "/ui/login", False),  # the reviewer pages post forms, with CSRF tokens
        ("POST", "/ui/decisions/x/replay", False),
        ("POST", "/uix", True),
        ("GET", "/decisions", False),
    ],
)
def test_every_post_outside_the_reviewer_pages_takes_json_only(method: str, path: str, json_only: bool) -> None:
    assert takes_json(method, path) is json_only
