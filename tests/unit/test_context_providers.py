"""Context providers, the pure parts: the ``context:`` block's checks at file:line:column, placeholders,
the request schema, and building a decision's context over a fake fetcher (the HTTP client is tested
end to end in tests/e2e/test_context_http.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from service.authoring.rulesets import parse_ruleset
from service.domain.context import (
    ContextSource,
    MissingPlaceholder,
    ProviderSpec,
    left_out,
    placeholders,
    provider_problems,
    render_url,
)
from service.domain.record import DecisionRecord, canonical
from service.domain.ruleset import Ruleset
from service.domain.schema import FieldSpec
from service.errors import ContextUnavailable, InvalidFacts, RulesetInvalid
from service.usecases.context import ContextBuilder
from tests.unit.test_redaction import record

RULESET = """\
name: shop
agent: shop-agent
description: d
owner: o
facts:
  order:
    type: object
    fields:
      id: {type: str}
      total: {type: number}
      paid: {type: bool}
      items: {type: list, items: {type: str}}
  customer:
    type: object
    fields:
      tier: {type: str}
  stock:
    type: object
    fields:
      left: {type: int, ge: 0}
escalation: {decision: SHOP.ESCALATE}
rules:
  - id: ship
    title: Ship
    when: stock.left > 0
    then: {decision: SHOP.SHIP, confidence: 0.9, autonomy: L2}
"""

FACTS = {"order": {"id": "A 1/2", "total": 10, "paid": True, "items": []}, "customer": {"tier": "gold"}}


def ruleset(context: str) -> Ruleset:
    return parse_ruleset((RULESET + context).encode(), "rules/shop.yaml", [])


def problems(context: str) -> list[str]:
    with pytest.raises(RulesetInvalid) as raised:
        ruleset(context)
    return [str(problem) for problem in raised.value.problems]


# --- the block's checks, located -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "reported"),
    [
        (
            'context:\n  stok: {http: "http://s/{order.id}", timeout_ms: 50}\n',
            "rules/shop.yaml:28:3: error: context.stok: unknown fact group 'stok' (facts are: customer, order, stock)",
        ),
        (
            'context:\n  stock: {http: "http://s/{order.idd}", timeout_ms: 50}\n',
            "rules/shop.yaml:28:28: error: context.stock.http: placeholder {order.idd} is not a path of the "
            "facts schema",
        ),
        (
            'context:\n  stock: {http: "http://s/{stock.left}", timeout_ms: 50}\n',
            "rules/shop.yaml:28:28: error: context.stock.http: placeholder {stock.left} names the group 'stock', "
            "which is itself fetched",
        ),
        (
            'context:\n  stock: {http: "http://s/{order}", timeout_ms: 50}\n',
            "rules/shop.yaml:28:28: error: context.stock.http: placeholder {order} names a object: "
            "only a str, int, number or bool fits in a URL",
        ),
        (
            'context:\n  stock: {http: "http://s/{order.items}", timeout_ms: 50}\n',
            "rules/shop.yaml:28:28: error: context.stock.http: placeholder {order.items} names a list: "
            "only a str, int, number or bool fits in a URL",
        ),
        (
            'context:\n  stock: {http: "http://s/{order id}", timeout_ms: 50}\n',
            "rules/shop.yaml:28:28: error: context.stock.http: placeholder {order id} must name a fact path "
            "such as resource.id",
        ),
        (
            'context:\n  stock: {http: "http://s/{order.id", timeout_ms: 50}\n',
            "rules/shop.yaml:28:27: error: context.stock.http: unmatched '{': a placeholder is {fact.path}",
        ),
        (
            'context:\n  stock: {http: "ftp://s/{order.id}", timeout_ms: 50}\n',
            "rules/shop.yaml:28:18: error: context.stock.http: the provider's URL must start with http:// or https://",
        ),
        (
            'context:\n  stock: {http: "http://s/{order.id}", timeout_ms: 0}\n',
            "rules/shop.yaml:28:52: error: context.stock.timeout_ms: timeout_ms is the milliseconds the provider "
            "may take: a number from 1 to 60000",
        ),
        (
            'context:\n  stock: {http: "http://s/{order.id}", timeout_ms: 60001}\n',
            "rules/shop.yaml:28:52: error: context.stock.timeout_ms: timeout_ms is the milliseconds the provider "
            "may take: a number from 1 to 60000",
        ),
        (
            'context:\n  stock: {http: "http://s/{order.id}", timeout_ms: 50, cache_s: -1}\n',
            "rules/shop.yaml:28:65: error: context.stock.cache_s: cache_s is the seconds a fetched value is kept: "
            "0 to 86400",
        ),
        (
            'redact: [customer.tier]\ncontext:\n  stock: {http: "http://s/{customer.tier}", timeout_ms: 50}\n',
            "rules/shop.yaml:29:28: error: context.stock.http: placeholder {customer.tier} names a redacted fact: "
            "its value would be logged in the source URL",
        ),
        (
            'context:\n  stock: {http: "http://s/{order.id}", timeout: 50}\n',
            "rules/shop.yaml:28:40: error: context.stock.timeout: unknown key 'timeout'",
        ),
    ],
)
def test_a_bad_context_block_is_reported_where_it_is_written(block: str, reported: str) -> None:
    assert problems(block) == [reported]


def test_a_good_block_builds_a_provider_and_lets_the_group_be_left_out() -> None:
    built = ruleset(
        'context:\n  stock: {http: "http://s/{order.id}?tier={customer.tier}", timeout_ms: 50, cache_s: 5}\n'
    )
    provider = built.context["stock"]
    assert (provider.url, provider.placeholders) == (
        "http://s/{order.id}?tier={customer.tier}",
        ("order.id", "customer.tier"),
    )
    assert (provider.timeout_ms, provider.cache_s) == (50.0, 5.0)
    assert built.decoder.convert(FACTS)["stock"] is None
    with pytest.raises(InvalidFacts) as missing:  # a group without a provider is still required
        built.decoder.convert({"order": FACTS["order"], "stock": {"left": 1}})
    assert [p.path for p in missing.value.problems] == ["customer"]
    assert built.facts["stock"].required  # the rules still see it as always there


def test_problems_come_from_the_spec_alone() -> None:
    facts = {"a": FieldSpec(type="str"), "b": FieldSpec(type="object", fields={"n": FieldSpec(type="int")})}
    assert provider_problems("b", ProviderSpec("https://x/{a}", 1), facts, {"b"}) == []
    assert provider_problems("b", ProviderSpec("https://x/{a}", True), facts, {"b"})[0][0] == "timeout_ms"


# --- placeholders ------------------------------------------------------------------------------------


def test_placeholders_are_found_with_their_offsets() -> None:
    assert placeholders("http://h/{a.b}/x/{c}") == [(10, "a.b"), (18, "c")]
    assert placeholders("http://h/none") == []


def test_the_url_is_filled_from_the_facts_percent_encoded() -> None:
    built = ruleset('context:\n  stock: {http: "http://s/{order.id}/{order.total}/{order.paid}", timeout_ms: 50}\n')
    assert render_url(built.context["stock"], FACTS) == "http://s/A%201%2F2/10/true"


def test_facts_lacking_a_provided_group_are_named_where_nothing_fetches() -> None:
    providers = ruleset(STOCK).context
    assert left_out(providers, {**FACTS, "stock": {"left": 1}}) is None
    assert left_out(providers, {**FACTS, "stock": None}) == "missing context: stock: left out, and not fetched here"


def test_a_placeholder_without_a_value_cannot_be_filled() -> None:
    built = ruleset('context:\n  stock: {http: "http://s/{customer.tier}", timeout_ms: 50}\n')
    with pytest.raises(MissingPlaceholder, match="customer.tier"):
        render_url(built.context["stock"], {"customer": None})


# --- building a decision's context over a fake fetcher -------------------------------------------------


class Fetcher:
    """Answers ``answers[url]``, or raises it when it is an exception; counts the calls."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def get_json(self, url: str, timeout_s: float) -> Any:
        self.calls.append(url)
        answer = self.answers[url]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def close(self) -> None:
        pass


STOCK = 'context:\n  stock: {http: "http://s/{order.id}", timeout_ms: 50, cache_s: 60}\n'
URL = "http://s/A%201%2F2"


def build(builder: ContextBuilder, rs: Ruleset, facts: dict[str, Any]) -> Any:
    return asyncio.run(builder.build_context(rs, facts))


def test_a_group_left_out_is_fetched_and_its_source_given() -> None:
    fetcher = Fetcher({URL: {"left": 3}})
    filled = build(ContextBuilder(fetcher, 200), ruleset(STOCK), {**FACTS, "stock": None})
    assert filled.error is None
    assert filled.facts == {**FACTS, "stock": {"left": 3}}
    assert (filled.sources["stock"].source, filled.sources["stock"].age_ms) == (URL, 0.0)


def test_facts_sent_win_and_nothing_is_fetched() -> None:
    fetcher = Fetcher({})
    sent = {**FACTS, "stock": {"left": 0}}
    filled = build(ContextBuilder(fetcher, 200), ruleset(STOCK), sent)
    assert (filled.facts, filled.sources, filled.error, fetcher.calls) == (sent, {}, None, [])


def test_the_cache_answers_a_repeat_within_cache_s_and_says_how_old() -> None:
    fetcher = Fetcher({URL: {"left": 3}})
    builder, rs = ContextBuilder(fetcher, 200), ruleset(STOCK)

    async def twice() -> tuple[Any, Any]:
        return await builder.build_context(rs, FACTS), await builder.build_context(rs, FACTS)

    first, second = asyncio.run(twice())
    assert fetcher.calls == [URL]
    assert second.facts["stock"] == {"left": 3}
    assert second.sources["stock"].fetched_at == first.sources["stock"].fetched_at
    assert second.sources["stock"].age_ms >= 0.0


def test_concurrent_decisions_share_one_fetch_of_a_cached_provider() -> None:
    class Held(Fetcher):
        """Answers once released: every decision of the burst has asked by then."""

        def __init__(self) -> None:
            super().__init__({})
            self.release = asyncio.Event()

        async def get_json(self, url: str, timeout_s: float) -> Any:
            self.calls.append(url)
            await self.release.wait()
            return {"left": 2}

    held = Held()
    builder, rs = ContextBuilder(held, 5000), ruleset(STOCK)

    async def burst() -> list[Any]:
        asked = [asyncio.ensure_future(builder.build_context(rs, FACTS)) for _ in range(5)]
        while not held.calls:  # the loop runs the five until the one fetch waits
            await asyncio.sleep(0)
        for _ in range(10):
            await asyncio.sleep(0)
        held.release.set()
        return list(await asyncio.gather(*asked))

    filled = asyncio.run(burst())
    assert held.calls == [URL]
    assert [f.facts["stock"] for f in filled] == [{"left": 2}] * 5


def test_without_cache_s_every_decision_asks() -> None:
    fetcher = Fetcher({URL: {"left": 3}})
    builder, rs = ContextBuilder(fetcher, 200), ruleset(STOCK.replace(", cache_s: 60", ""))
    build(builder, rs, FACTS)
    build(builder, rs, FACTS)
    assert fetcher.calls == [URL, URL]


def test_a_failing_provider_gives_the_reason_and_no_facts() -> None:
    fetcher = Fetcher({URL: ContextUnavailable("answered HTTP 500")})
    filled = build(ContextBuilder(fetcher, 200), ruleset(STOCK), FACTS)
    assert filled.error == f"missing context: stock from {URL}: answered HTTP 500"
    assert filled.facts == FACTS and filled.sources == {}


def test_data_the_schema_refuses_is_a_failure_naming_the_field_and_is_not_cached() -> None:
    fetcher = Fetcher({URL: {"left": -1}})
    builder, rs = ContextBuilder(fetcher, 200), ruleset(STOCK)
    filled = build(builder, rs, FACTS)
    assert filled.error == (
        f"missing context: stock from {URL}: invalid data: invalid facts: stock.left: Expected `int` >= 0"
    )
    build(builder, rs, FACTS)
    assert fetcher.calls == [URL, URL]


def test_a_provider_past_its_timeout_fails_closed() -> None:
    class Stuck(Fetcher):
        async def get_json(self, url: str, timeout_s: float) -> Any:
            await asyncio.Event().wait()  # never answers: the timeout ends it

    filled = build(ContextBuilder(Stuck({}), 200), ruleset(STOCK.replace("timeout_ms: 50", "timeout_ms: 1")), FACTS)
    assert filled.error == f"missing context: stock from {URL}: timed out after 1 ms"


def test_the_budget_bounds_every_provider_of_a_request() -> None:
    class Stuck(Fetcher):
        async def get_json(self, url: str, timeout_s: float) -> Any:
            self.calls.append(f"{timeout_s:g}")
            await asyncio.Event().wait()

    stuck = Stuck({})
    filled = build(ContextBuilder(stuck, 300), ruleset(STOCK.replace("timeout_ms: 50", "timeout_ms: 60000")), FACTS)
    assert filled.error is not None and filled.error.startswith(f"missing context: stock from {URL}: timed out after")
    assert 0 < float(stuck.calls[0]) <= 0.3  # what was left of the budget, not the provider's 60 s


def test_providers_of_one_request_run_concurrently() -> None:
    two = (
        'context:\n  stock: {http: "http://s/{order.id}", timeout_ms: 5000}\n'
        '  customer: {http: "http://c/{order.id}", timeout_ms: 5000}\n'
    )

    class Meeting(Fetcher):
        """Each call waits until both have started: sequential calls would time out."""

        def __init__(self) -> None:
            super().__init__({})
            self.both = asyncio.Event()

        async def get_json(self, url: str, timeout_s: float) -> Any:
            self.calls.append(url)
            if len(self.calls) == 2:
                self.both.set()
            await self.both.wait()
            return {"left": 1} if url.startswith("http://s/") else {"tier": "gold"}

    filled = build(ContextBuilder(Meeting(), 10_000), ruleset(two), {"order": FACTS["order"]})
    assert filled.error is None
    assert filled.facts == {"order": FACTS["order"], "stock": {"left": 1}, "customer": {"tier": "gold"}}


def test_a_placeholder_without_a_value_fails_closed() -> None:
    rs = ruleset('context:\n  stock: {http: "http://s/{customer.tier}", timeout_ms: 50}\n')
    filled = build(ContextBuilder(Fetcher({}), 200), rs, {"order": FACTS["order"], "customer": {"tier": None}})
    assert filled.error == "missing context: stock: the fact customer.tier the URL names has no value"


def test_without_a_fetcher_a_group_left_out_fails_closed() -> None:
    filled = build(ContextBuilder(None, 200), ruleset(STOCK), FACTS)
    assert filled.error == f"missing context: stock from {URL}: no context client in this process"


def test_a_record_without_fetched_groups_is_encoded_as_before_and_one_with_them_says_where_from() -> None:
    before = record({"kind": "receipt"}, {"type": "SEND"}, "m", [])
    assert '"context"' not in canonical(before)  # UNSET: old records keep their bytes and so their hashes
    source = ContextSource("http://s/1", 12.5, "2026-01-01T00:00:00.000000+00:00")
    body = canonical(msgspec.structs.replace(before, context={"stock": source}))
    assert (
        '"context":{"stock":{"age_ms":12.5,"fetched_at":"2026-01-01T00:00:00.000000+00:00","source":"http://s/1"}}'
        in body
    )
    assert msgspec.json.decode(body, type=DecisionRecord).context == {"stock": source}
