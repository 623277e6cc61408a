"""Prometheus metrics: requests, latencies and errors per route, served at ``/metrics`` to
administrators and to loopback scrapers only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from media.udpmux import DROP_REASONS

# name, help, kind, key in the supervisor's snapshot
MEDIA_METRICS = [
    ("giaoban_media_workers", "SFU worker processes running", "gauge", "workers"),
    ("giaoban_media_worker_restarts", "SFU workers restarted after they died", "counter", "restarts"),
    ("giaoban_media_rooms", "Rooms open on the SFU workers", "gauge", "rooms"),
    ("giaoban_media_participants", "Participants in SFU rooms", "gauge", "participants"),
    ("giaoban_media_publishers", "Participants publishing media", "gauge", "publishers"),
    ("giaoban_media_forwarded_packets", "RTP packets forwarded to subscribers", "counter", "packets"),
    ("giaoban_media_forwarded_bytes", "Payload bytes forwarded to subscribers", "counter", "bytes"),
    ("giaoban_media_forwarded_packets_per_second", "RTP packets forwarded per second (last report)", "gauge", "packets_per_second"),
    ("giaoban_media_forwarded_bytes_per_second", "Payload bytes forwarded per second (last report)", "gauge", "bytes_per_second"),
    ("giaoban_media_keyframe_requests", "Keyframe requests sent to publishers (after throttling)", "counter", "keyframe_requests"),
    ("giaoban_media_retransmitted_packets", "Packets sent again for subscribers' NACKs", "counter", "retransmitted"),
    ("giaoban_media_dropped_packets", "Packets not sent: no ICE pair yet or a subscriber's socket buffer full", "counter", "dropped_packets"),
    ("giaoban_media_subscriber_packets_lost", "Packets subscribers report lost (RTCP), current connections", "gauge", "subscriber_lost"),
    ("giaoban_media_subscriber_packets_expected", "Packets subscribers expected (RTCP), current connections", "gauge", "subscriber_expected"),
]


class MediaCollector(Collector):
    """Reads the media plane's figures when /metrics is scraped (nothing while no SFU runs)."""

    def __init__(self, snapshot: Callable[[], dict[str, Any] | None]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        figures = self.snapshot() or {}
        for name, help_text, kind, key in MEDIA_METRICS:
            value = float(figures.get(key, 0))
            if kind == "counter":
                yield CounterMetricFamily(name, help_text, value=value)
            else:
                yield GaugeMetricFamily(name, help_text, value=value)
        dropped = figures.get("demux_dropped")
        if dropped is not None:  # the SFU workers share one UDP port each (GIAOBAN_MEDIA_UDP_PORT)
            family = CounterMetricFamily("giaoban_media_demux_dropped", "Datagrams the shared UDP ports dropped, by reason",
                                         labels=["reason"])
            for reason in sorted(set(DROP_REASONS) | set(dropped)):
                family.add_metric([reason], float(dropped.get(reason, 0)))
            yield family
        yield GaugeMetricFamily("giaoban_room_connections", "Signalling connections joined to rooms",
                                value=float(figures.get("connections", 0)))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.media_snapshot: Callable[[], dict[str, Any] | None] = lambda: None
        self.registry.register(MediaCollector(lambda: self.media_snapshot()))
        self.requests = Counter(
            "giaoban_http_requests_total", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "giaoban_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.errors = Counter(
            "giaoban_http_errors_total", "HTTP requests answered with a 5xx status or that raised", ["route"], registry=self.registry
        )


def route_names(routes: list[BaseRoute], prefix: str = "") -> dict[int, str]:
    """Map each endpoint to its path template, so labels stay bounded (no ids in them)."""
    names: dict[int, str] = {}
    for route in routes:
        if isinstance(route, Route):
            names[id(route.endpoint)] = prefix + route.path
        elif isinstance(route, Mount):
            names[id(route.app)] = prefix + route.path
            names.update(route_names(list(route.routes), prefix + route.path))
    return names


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, names: dict[int, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = self.names.get(id(scope.get("endpoint")), "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)
            if status >= 500:
                self.metrics.errors.labels(route).inc()
