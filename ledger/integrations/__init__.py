"""Ways usage reaches the sink from applications: the Python client, SDK hooks (instrument), LiteLLM's logger, OTLP."""
