"""A reconciliation run around the pure core in ledger.reconcile, by job: `logged` and `billed` load the two sides
(read as `reading` says, the logged usage priced by `logged_prices`, the reads spread over two connections by
`side_reader`), `run` runs the core for a tenant's period and records the run, `store` stores drift rows and
findings and queues their alerts."""
