"""Prometheus metrics of the gateway, in a registry of its own (one per app, so several apps can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Routes are labelled by their path; any other path is "other", so unknown URLs cannot grow the label set.
ROUTES = ("/v2/rerank", "/v1/rerank", "/rerank", "/health", "/health/live", "/metrics")
# Rank1 requests take from tens of milliseconds (a GPU, short budgets) to minutes (long reasoning on many documents).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def route_label(path: str) -> str:
    """The ``route`` label of a request path (unknown paths share one label)."""
    return path if path in ROUTES else "other"


class GatewayMetrics:
    """Requests by route and status code, their latency, documents reranked, and rerank requests in flight."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rank1_gateway_requests", "HTTP requests answered, by route and status code",
                                ["route", "code"], registry=self.registry)
        self.latency = Histogram("rank1_gateway_request_duration_seconds", "Time to answer an HTTP request",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.documents = Counter("rank1_gateway_documents", "Documents sent for reranking", ["route"],
                                 registry=self.registry)
        self.in_flight = Gauge("rank1_gateway_rerank_requests_in_flight", "Rerank requests being processed",
                               registry=self.registry)
        self.upstream_errors = Counter("rank1_gateway_upstream_errors", "Errors of the Rank1 server, by kind",
                                       ["kind"], registry=self.registry)

    def observe(self, path: str, code: int, seconds: float) -> None:
        """Count one answered request: route, status code and latency."""
        route = route_label(path)
        self.requests.labels(route=route, code=str(code)).inc()
        self.latency.labels(route=route).observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
