"""The running service around the API: the scheduler (one leader per database, the daily chain), metrics, log
redaction."""
