"""HTTP API of the collector: OEE, equipment, timelines, alerts."""
