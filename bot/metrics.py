"""What the service counts, for ``GET /metrics`` (Prometheus text format).

One registry per runtime (no process-wide globals: tests build many runtimes in one process).
Counters are this process's since it started; gauges that describe shared state (the outbox
backlog) are read from the database when scraped, so every instance reports the same backlog.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    """The service's counters and gauges, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # What the process that answers the webhooks counts itself (the server, when events
        # are processed in a processing process beside it): shown by /metrics beside the
        # processing side's registry, whichever process that is.
        self.front = CollectorRegistry(auto_describe=True)
        self.requests_refused = Counter(
            "lianxin_requests_refused",
            "Requests to a channel endpoint answered without storing their event, by endpoint "
            "(bridge, wechat, wecom) and status (400, 401, 403, 413, 422; 503: the database "
            "could not take it).",
            ["endpoint", "status"],
            registry=self.front,
        )
        self.events_received = Counter(
            "lianxin_events_received",
            "Inbound events taken by a channel endpoint once the journal is committed: new "
            "ones, and retries of stored ones (also counted processed, status duplicate).",
            ["channel"],
            registry=self.registry,
        )
        self.events_processed = Counter(
            "lianxin_events_processed",
            "Inbound events handled by this process's processor, by outcome (handled, "
            "duplicate, rate_limited, unknown_group, own_message, failed).",
            ["channel", "status"],
            registry=self.registry,
        )
        self.outbox_sent = Counter(
            "lianxin_outbox_sent",
            "Messages delivered by this process: by the delivery worker, or as the passive "
            "reply in a WeChat or WeCom callback's response.",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_failed = Counter(
            "lianxin_outbox_failed",
            "Messages given up for good by this process.",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_retried = Counter(
            "lianxin_outbox_retried",
            "Delivery attempts that failed and will be tried again.",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "lianxin_outbox_pending",
            "Messages due to be sent now (being sent, or pending with their time come), all "
            "instances; those held back on purpose are lianxin_outbox_waiting.",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_waiting = Gauge(
            "lianxin_outbox_waiting",
            "Messages held back on purpose, all instances: reason scheduled (a bulletin copy "
            "waiting for quiet hours to end or the daily cap), retry (a failed try waiting "
            "for its next one), paused (a paused bulletin's copies).",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.inbound_queued = Gauge(
            "lianxin_inbound_queued",
            "Events journaled and not processed yet (the processors' queue), all instances.",
            ["channel"],
            registry=self.registry,
        )
        self.inbound_lag = Gauge(
            "lianxin_inbound_lag_seconds",
            "How long the oldest unprocessed event has waited (0 when none waits).",
            registry=self.registry,
        )
        self.channel_up = Gauge(
            "lianxin_channel_up",
            "1 while deliveries through the channel succeed, 0 once it is marked down.",
            ["channel"],
            registry=self.registry,
        )
        self.scheduler_leader = Gauge(
            "lianxin_scheduler_leader",
            "1 when this instance runs the scheduler's jobs.",
            registry=self.registry,
        )
