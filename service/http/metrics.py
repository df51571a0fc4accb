"""GET /metrics: the Prometheus text exposition of this process's metrics (service/adapters/metrics.py)."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State

from service.adapters.metrics import CONTENT_TYPE, Metrics
from service.http.guard import roles


@get(
    "/metrics",
    summary="Prometheus metrics: decisions, stage latencies, guardrail denials, OPA and its breaker, approvals",
    opt=roles("audit"),
    media_type=CONTENT_TYPE,
)
async def metrics(state: State) -> Response[bytes]:
    registry: Metrics = state.metrics  # set with the runtime when the app starts (service/bootstrap.py)
    return Response(await registry.render(), media_type=CONTENT_TYPE)


ROUTES = [metrics]
