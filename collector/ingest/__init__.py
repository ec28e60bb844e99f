"""MQTT ingest: subscribe (shared, persistent), validate, commit, confirm, acknowledge."""
