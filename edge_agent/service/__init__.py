"""The agent's service shell: health endpoint, metrics, systemd notifications.

Everything here sits above the agent's parts and reads their plain-data status
(:mod:`edge_agent.status`); the parts never import this package.

Wiring in ``edge-agent run`` (inside the coroutine that runs the agent)::

    heartbeat = LoopHeartbeat()                 # ticks every 1 s, stale after 10 s
    heartbeat.start()
    health = HealthServer(config.health, agent.status, heartbeat)
    health.start()                              # HealthServerError: exit with its message
    notifier = SystemdNotifier()                # no-op outside systemd
    notifier.start_watchdog()
    ...start sources, buffer, forwarder...
    notifier.ready(f"{len(devices)} devices, broker {broker}")
    ...on SIGHUP:  with notifier.reloading(): reload()
    ...on SIGTERM: notifier.stopping(); stop the parts
    await notifier.stop_watchdog()
    await asyncio.to_thread(health.stop)
    await heartbeat.stop()

``agent.status`` is called from the health server's threads: see :mod:`.health`.
"""

from edge_agent.service.config import HealthConfig, parse_listen
from edge_agent.service.errors import HealthServerError, ServiceError
from edge_agent.service.health import HealthServer
from edge_agent.service.heartbeat import LoopHeartbeat
from edge_agent.service.readiness import Readiness, readiness
from lineside_common.systemd_notify import SystemdNotifier

__all__ = [
    "HealthConfig",
    "HealthServer",
    "HealthServerError",
    "LoopHeartbeat",
    "Readiness",
    "ServiceError",
    "SystemdNotifier",
    "parse_listen",
    "readiness",
]
