"""Billing statements: pulling documents from providers or files (importing), and storing their normalized lines
(store)."""
