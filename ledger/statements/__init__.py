"""Billing statements: the pull service (fetch or read, parse, store: `pull`) that the command line, the daily
pull and the demo share; getting documents in from files or a provider's API (importing); and storing their
normalized lines (store)."""
