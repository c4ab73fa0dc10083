"""The sink: usage events in. Event fields and their decoding (events, normalizers), the ingest of a batch (ingest,
group_commit), the hourly and daily rollups, latency histograms."""
