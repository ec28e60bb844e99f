"""``lineside-demo``: the whole pipeline on one machine, with a shift played in minutes.

Simulated PLCs (OPC UA and Modbus) -> edge agent -> MQTT -> collector + API, each a child
process; the broker and PostgreSQL are the configured ones when they answer, else
embedded ones under the demo's data folder. See docs/demo.md.
"""
