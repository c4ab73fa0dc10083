"""Prometheus metrics of one running service (one registry per app, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ledger.sink.group_commit import BatchStats


class SchedulerMetrics:
    """What the scheduler and the alert deliverer did in this process, and the outbox as last seen."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter(
            "tokenledger_alert_deliveries",
            "Alert delivery attempts by outcome (sent, retrying, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.outbox = Gauge(
            "tokenledger_alert_outbox", "Alerts in the outbox by status", ["status"], registry=self.registry
        )
        self.job_runs = Counter(
            "tokenledger_job_runs", "Scheduled job runs by job and outcome", ["job", "outcome"], registry=self.registry
        )
        self.job_seconds = Histogram(
            "tokenledger_job_seconds",
            "Duration of scheduled job runs",
            ["job"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )

    def delivered(self, outcome: str) -> None:
        self.deliveries.labels(outcome=outcome).inc()

    def outbox_depth(self, by_status: dict[str, int]) -> None:
        for status in ("pending", "sent", "failed"):
            self.outbox.labels(status=status).set(by_status.get(status, 0))

    def job_ran(self, job: str, outcome: str, seconds: float) -> None:
        self.job_runs.labels(job=job, outcome=outcome).inc()
        self.job_seconds.labels(job=job).observe(seconds)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.scheduler = SchedulerMetrics(self.registry)
        self.events_accepted = Counter("tokenledger_events_accepted", "Usage events stored", registry=self.registry)
        self.events_duplicate = Counter(
            "tokenledger_events_duplicate", "Usage events whose id had been seen before", registry=self.registry
        )
        self.events_rejected = Counter(
            "tokenledger_events_rejected", "Usage events rejected by validation", registry=self.registry
        )
        self.batch_events = Histogram(
            "tokenledger_commit_batch_events",
            "Events per group-commit transaction",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "tokenledger_commit_batch_requests",
            "Requests per group-commit transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "tokenledger_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
            registry=self.registry,
        )

    def observe_batch(self, stats: BatchStats) -> None:
        self.batch_events.observe(stats.events)
        self.batch_requests.observe(stats.requests)
        self.commit_seconds.observe(stats.commit_seconds)
