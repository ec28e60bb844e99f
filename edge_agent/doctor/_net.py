"""TCP reachability shared by the PLC and broker checks: one connect, explained."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from edge_agent.doctor.results import Check, fail, ok


async def tcp_check(name: str, host: str, port: int, timeout_s: float, what: str) -> Check:
    """Open (and close) one TCP connection to ``host:port``; ``what`` names the server."""
    target = f"{host}:{port}"
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except TimeoutError:
        return fail(
            name,
            f"{target}: no answer within {timeout_s:g} s",
            f"wrong host, {what} switched off, a firewall dropping port {port}, or the "
            f"cable/VLAN; from this PC try: nc -vz {host} {port}",
        )
    except socket.gaierror as exc:
        return fail(
            name,
            f"{target}: the host name does not resolve ({exc.strerror})",
            "check the host name in the configuration, or use the IP address; "
            "check /etc/hosts and DNS",
        )
    except ConnectionRefusedError:
        return fail(
            name,
            f"{target}: connection refused (the host answers, nothing listens on port {port})",
            f"wrong port, or the {what} is not running on {host}",
        )
    except OSError as exc:
        return fail(
            name,
            f"{target}: {exc.strerror or exc}",
            f"check the network route from this PC to {host} (ip route, cable, VLAN)",
        )
    writer.close()
    # reachable is what was asked; a messy close does not change that
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout_s)
    return ok(name, f"{target} reachable")
