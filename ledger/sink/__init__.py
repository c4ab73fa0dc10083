"""The sink: validated events in. The ingest of a batch (`ingest`, `group_commit`: deduplicated, committed before
the request is answered), the hourly and daily rollups (`rollup`), latency histograms (`latency`)."""
