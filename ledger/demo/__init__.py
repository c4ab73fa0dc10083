"""The demo: a realistic month sent through the real paths (month), and the command's setup and serving (setup)."""
