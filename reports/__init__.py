"""Reports on the drift between logged and billed usage: the web report (`reports.web`), the monthly
report (`reports.monthly`) and alerts (`ledger.alerts`). Pages and reports read rollups, drift rows and
findings only; the computations are pure modules over plain data."""
