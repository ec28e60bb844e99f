"""Lineside collector: MQTT ingest into PostgreSQL, OEE engine and HTTP API.

Not implemented yet: it arrives with its own issues. There is deliberately no
`oee-collector` command until it works.
"""
