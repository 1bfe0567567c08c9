"""Prometheus metrics of the server, in one registry per application so tests can run several apps at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.http_requests = Counter(
            "ongea_http_requests_total",
            "HTTP requests answered, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.mpesa_callbacks = Counter(
            "ongea_mpesa_callbacks_total",
            "Daraja callbacks recorded, by kind and what they did (settlement_conflict needs a person)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.payouts = Gauge(
            "ongea_payouts",
            "Payout outbox rows by status, read from the database at each scrape",
            ["status"],
            registry=self.registry,
        )
        self.payouts_stuck = Gauge(
            "ongea_payouts_processing_over_an_hour",
            "Payouts still processing an hour after confirmation: each needs a look",
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "ongea_http_request_seconds",
            "Time to answer an HTTP request",
            ["route"],
            registry=self.registry,
        )
        self.open_sessions = Gauge(
            "ongea_ws_open_sessions",
            "Conversation WebSockets open on this process",
            registry=self.registry,
        )
        self.turns = Counter(
            "ongea_turns_total",
            "Conversation turns (WebSocket and tools) by what they did",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.turn_latency = Histogram(
            "ongea_turn_seconds",
            "Time from a turn's input to its answer (the driver call, database included)",
            buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.webhooks = Counter(
            "ongea_elevenlabs_webhooks_total",
            "ElevenLabs post-call webhooks, by outcome (stored, bad_signature, invalid)",
            ["outcome"],
            registry=self.registry,
        )
