"""One read layer for the reconciler, the API, the report and the command line: the month's logged days priced
from the catalog (`logged_days`, `logged_prices`) and its billed days (`billed_days`), as the reconciler reads
them; findings, usage, statement and run lines, money over time, dispute packs."""
