"""Prices and model identity: the effective-dated price catalog (prices, catalog), its layers (tenant prices, the
sourced overlay prices.csv, genai-prices' base layer), model names and aliases, input-size bands."""
