"""`python -m ledger.cli`: the command line, as the `tokenledger` script runs it."""

from ledger.cli import app

if __name__ == "__main__":
    app()
