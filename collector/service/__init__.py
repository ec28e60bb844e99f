"""The ``oee-collector run`` process: threads, health endpoint, systemd."""
