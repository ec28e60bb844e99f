"""Lineside edge agent: reads PLCs, derives production events, buffers and forwards them.

Not implemented yet: the agent arrives with its own issues (YAML config and sources,
then the SQLite buffer and MQTT delivery). There is deliberately no `edge-agent`
command until it works.
"""
