"""A reconciliation run around the pure core in ledger.reconcile: `run` reads the month's two sides through the
read layer (`ledger.queries.logged_days`, `ledger.queries.billed_days`, spread over two connections by
`side_reader`), runs the core for a tenant's period and records the run; `store` stores drift rows and findings
and queues their alerts; `triage` records people's changes to a finding's status."""
