"""Alerts: channels (signed webhook, Slack, email), the rules that decide when to alert, the outbox written in
the cause's transaction, and the deliverer that sends it with retries. The reconciler and the scheduler
call the functions re-exported here; the monthly report is queued by `reports.monthly.send_monthly_report`."""

from ledger.alerts.channels import enabled_channels
from ledger.alerts.delivery import Deliverer, DeliveryStats, SendOutcome, deliver_due, send_test
from ledger.alerts.outbox import (
    queue_budget_alerts,
    queue_finding_alert,
    queue_finding_cleared,
    queue_run_failure_alert,
    queue_stale_source_alerts,
)

__all__ = [
    "Deliverer",
    "DeliveryStats",
    "SendOutcome",
    "deliver_due",
    "enabled_channels",
    "queue_budget_alerts",
    "queue_finding_alert",
    "queue_finding_cleared",
    "queue_run_failure_alert",
    "queue_stale_source_alerts",
    "send_test",
]
