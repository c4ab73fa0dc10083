"""A reconciliation run around the pure core in ledger.reconcile: load the month's logged and billed usage, run the
detectors, store drift rows and findings."""
