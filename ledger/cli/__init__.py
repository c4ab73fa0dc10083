"""The command line, `tokenledger`."""
