"""One read layer for the API, the report and the command line: findings, usage, statement and run lines, money over
time, dispute packs."""
