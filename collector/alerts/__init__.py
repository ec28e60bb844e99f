"""Threshold alerts: rules over the stored facts -> alert events in the audit schema,
on MQTT and to webhooks (docs/alerts.md).

``config`` (the ``alerts`` section), ``evaluate`` (pure: observations -> breaches and
resolves), ``observe`` (SQL -> observations), ``store`` (episodes, events, outbox),
``deliver`` (MQTT and webhooks), ``service`` (the threads of one collector process).

Nothing is imported here: ``collector.config`` imports ``collector.alerts.config``, and
the service imports ``collector.config`` back.
"""
