"""Lineside collector: MQTT ingest into PostgreSQL (``oee-collector``).

``ingest`` validates and commits agents' batches, ``store`` owns the schema and the
writes, ``service`` runs it as a process. The OEE engine and the HTTP API come next.
"""
