"""Who may do what: tenants, API keys and their roles (auth), and the throttle on failed keys."""
