"""The shipped broker configuration (config/mosquitto/) on a real Mosquitto 2.0.

The broker runs ``mosquitto.conf`` and ``acl.example`` as shipped; a temp copy rewrites
only the listener ports (free loopback ports), the file paths (a throwaway CA with server
and client certificates, a password file from ``mosquitto_passwd``, a persistence dir) and
the user the broker drops to (ours, so it can read pytest's private temp dir). The ACL copy
gets one extra test user, an observer that may read everything, to prove that a refused
message went nowhere. Clients are paho-mqtt 2 speaking MQTT 5 (``_mosquitto.MqttPeer``).

"Nothing arrived" is proven with a barrier instead of a sleep: after the forbidden message
the same client sends one the watcher may receive. Mosquitto handles one connection's
packets in order and delivers to a subscriber in order, so once the barrier is in, a
forbidden message that had been accepted would be in too.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _mosquitto import (
    MOSQUITTO_PASSWD,
    Mosquitto,
    MqttPeer,
    TlsFiles,
    free_port,
    make_tls_files,
    wait_until,
)
from _mosquitto import write_password_file as write_passwords

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd is not installed"),
]

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "mosquitto"
SITE = "lineside/v1/acme/plant-1"
A_PRESS_1 = f"{SITE}/pressing/line-3/press-1/events"  # acl.example: agent-a's equipment
A_PRESS_2 = f"{SITE}/pressing/line-3/press-2/events"
B_ROBOT = f"{SITE}/welding/line-5/robot-1/events"  # acl.example: agent-b's equipment
SHARED_EVENTS = "$share/lineside-collectors/lineside/v1/+/+/+/+/+/events"
COLLECTOR, MONITOR, OBSERVER = "lineside-collector", "lineside-monitor", "test-observer"
USERS = ("agent-a", "agent-b", COLLECTOR, MONITOR, OBSERVER)
ONE_MIB = 1_048_576
NOT_AUTHORIZED = 135  # MQTT 5 reason code in CONNACK and PUBACK
TIMEOUT_S = 5.0


def status(agent: str) -> str:
    return f"{SITE}/_agents/{agent}/status"


def acks(agent: str) -> str:
    return f"{SITE}/_agents/{agent}/acks"


@dataclass(frozen=True)
class Site:
    """What plant IT would put under /etc/mosquitto, made up for one test module."""

    tls: TlsFiles  # the client certificate's CN is agent-a
    password_file: Path
    acl_file: Path
    passwords: dict[str, str] = field(repr=False)  # pytest prints fixtures on failure


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("site")
    passwords = {user: secrets.token_urlsafe(18) for user in USERS}
    acl = root / "acl"
    acl.write_text(
        (CONFIG_DIR / "acl.example").read_text()
        + "\n# test only: sees every message, to prove refused ones went nowhere\n"
        f"user {OBSERVER}\ntopic read lineside/#\n"
    )
    return Site(
        tls=make_tls_files(root / "pki", client_name="agent-a"),
        password_file=write_passwords(root / "passwd", passwords),
        acl_file=acl,
        passwords=passwords,
    )


def render_config(site: Site, tls_port: int, local_port: int, data_dir: Path, mtls: bool) -> str:
    """The shipped mosquitto.conf with ports, paths and user rewritten, line by line.

    Every rewrite must hit exactly one line, so a changed shipped file fails here loudly
    instead of silently testing something else. ``mtls`` switches on the documented
    alternative (the two commented lines).
    """
    rewrites = {
        "user mosquitto": f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        "persistence_location /var/lib/mosquitto/": f"persistence_location {data_dir}/",
        "password_file /etc/mosquitto/passwd": f"password_file {site.password_file}",
        "acl_file /etc/mosquitto/acl": f"acl_file {site.acl_file}",
        "listener 8883": f"listener {tls_port} 127.0.0.1",
        "cafile /etc/mosquitto/ca_certificates/lineside-ca.crt": f"cafile {site.tls.ca_cert}",
        "certfile /etc/mosquitto/certs/broker.crt": f"certfile {site.tls.server_cert}",
        "keyfile /etc/mosquitto/certs/broker.key": f"keyfile {site.tls.server_key}",
        "listener 1883 127.0.0.1": f"listener {local_port} 127.0.0.1",
    }
    if mtls:
        rewrites["#require_certificate true"] = "require_certificate true"
        rewrites["#use_identity_as_username true"] = "use_identity_as_username true"
    lines = (CONFIG_DIR / "mosquitto.conf").read_text().splitlines()
    for old, new in rewrites.items():
        hits = [i for i, line in enumerate(lines) if line.strip() == old]
        assert len(hits) == 1, f"mosquitto.conf: expected one line {old!r}, found {len(hits)}"
        lines[hits[0]] = new
    return "\n".join(lines) + "\n"


@dataclass
class Broker:
    mosquitto: Mosquitto
    tls_port: int
    local_port: int
    site: Site

    def log(self) -> str:
        return self.mosquitto.log.read_text()


def start_broker(site: Site, workdir: Path, mtls: bool = False) -> Broker:
    tls_port, local_port = free_port(), free_port()
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    text = render_config(site, tls_port, local_port, data_dir, mtls)
    mosquitto = Mosquitto(workdir, config_text=text, port=tls_port, extra_ports=(local_port,))
    mosquitto.start()
    return Broker(mosquitto, tls_port, local_port, site)


@pytest.fixture
def broker(site: Site, tmp_path: Path) -> Iterator[Broker]:
    running = start_broker(site, tmp_path / "broker")
    try:
        yield running
    finally:
        running.mosquitto.stop()
    log = running.log()
    assert not [user for user, pw in site.passwords.items() if pw in log], "password logged"


def peer(
    broker: Broker,
    user: str | None,
    *,
    password: str | None = None,
    local: bool = False,
    tls: bool = True,
    client_cert: bool = False,
    client_id: str | None = None,
) -> MqttPeer:
    """A client of ``broker``: TLS listener (``tls=False``: without TLS) or loopback one."""
    return MqttPeer(
        broker.local_port if local else broker.tls_port,
        user,
        password or (broker.site.passwords[user] if user else None),
        client_id=client_id,
        tls=broker.site.tls if tls and not local else None,
        client_cert=client_cert,
    )


@pytest.fixture
def clients() -> Iterator[ExitStack]:
    """``clients.enter_context(peer(...))`` closes the peer at the end, also on failure."""
    with ExitStack() as stack:
        yield stack


def config_blocks(conf: str) -> list[list[str]]:
    """The blocks of mosquitto.conf (lines between blank lines), comments included."""
    blocks = [[line for line in block.splitlines() if line.strip()] for block in conf.split("\n\n")]
    return [block for block in blocks if block]


def test_every_setting_in_the_shipped_config_says_why() -> None:
    conf = (CONFIG_DIR / "mosquitto.conf").read_text()
    for block in config_blocks(conf):
        if any(not line.startswith("#") for line in block):
            assert block[0].startswith("#"), f"mosquitto.conf: no comment above {block[0]!r}"
    active = [line.split() for line in conf.splitlines() if line and not line.startswith("#")]
    listeners = [words[1:] for words in active if words[0] == "listener"]
    # the plain listener must never face the network: only the TLS one may go unbound
    assert listeners == [["8883"], ["1883", "127.0.0.1"]]


def test_plain_mqtt_to_the_tls_listener_is_refused(broker: Broker, clients: ExitStack) -> None:
    plain = clients.enter_context(peer(broker, "agent-a", tls=False))
    assert plain.connect() is None, "plain MQTT got a CONNACK from the TLS listener"
    assert plain.disconnected is not None
    # the same credentials over TLS work, so it was the missing TLS that was refused
    clients.enter_context(peer(broker, "agent-a")).connected()


@pytest.mark.parametrize("local", [False, True], ids=["tls-listener", "loopback-listener"])
def test_wrong_password_is_refused(broker: Broker, clients: ExitStack, local: bool) -> None:
    wrong = clients.enter_context(peer(broker, "agent-a", password="not-it", local=local))
    rc = wrong.connect()
    assert rc is not None
    assert rc.value == NOT_AUTHORIZED  # 2.0.11 answers 135, not 134 (bad user name or password)
    clients.enter_context(peer(broker, "agent-a", local=local)).connected()


@pytest.mark.parametrize("local", [False, True], ids=["tls-listener", "loopback-listener"])
def test_anonymous_is_refused(broker: Broker, clients: ExitStack, local: bool) -> None:
    anonymous = clients.enter_context(peer(broker, None, local=local))
    rc = anonymous.connect()
    assert rc is not None
    assert rc.value == NOT_AUTHORIZED


def test_agent_publishes_its_events_and_status_and_receives_its_acks(
    broker: Broker, clients: ExitStack
) -> None:
    observer = clients.enter_context(peer(broker, OBSERVER)).connected()
    observer.subscribe("lineside/v1/#")
    agent = clients.enter_context(peer(broker, "agent-a")).connected()
    agent.subscribe(acks("agent-a"))
    collector = clients.enter_context(peer(broker, COLLECTOR)).connected()

    assert not agent.publish(A_PRESS_1, b"batch-1").is_failure
    assert not agent.publish(A_PRESS_2, b"batch-2").is_failure
    assert not agent.publish(status("agent-a"), b"online", retain=True).is_failure
    observer.wait_for(A_PRESS_1, b"batch-1")
    observer.wait_for(A_PRESS_2, b"batch-2")
    observer.wait_for(status("agent-a"), b"online")

    assert not collector.publish(acks("agent-a"), b"ack-1").is_failure
    agent.wait_for(acks("agent-a"), b"ack-1")


def test_monitor_reads_status_only(broker: Broker, clients: ExitStack) -> None:
    agent = clients.enter_context(peer(broker, "agent-a")).connected()
    assert not agent.publish(A_PRESS_1, b"batch-1").is_failure
    assert not agent.publish(status("agent-a"), b"online", retain=True).is_failure
    monitor = clients.enter_context(peer(broker, MONITOR)).connected()
    monitor.subscribe("lineside/v1/#")
    monitor.wait_for(status("agent-a"), b"online")  # the retained status
    assert not agent.publish(A_PRESS_1, b"batch-2").is_failure
    assert not agent.publish(status("agent-a"), b"online-again").is_failure  # the barrier
    monitor.wait_for(status("agent-a"), b"online-again")
    assert monitor.payloads(A_PRESS_1) == []
    # the "%u" patterns must not let the monitor pose as an agent named like itself
    assert monitor.publish(status(MONITOR), b"fake").value == NOT_AUTHORIZED
    assert monitor.publish(status("agent-a"), b"fake").value == NOT_AUTHORIZED


def test_agent_cannot_publish_for_another_agent(broker: Broker, clients: ExitStack) -> None:
    observer = clients.enter_context(peer(broker, OBSERVER)).connected()
    observer.subscribe("lineside/v1/#")
    agent_a = clients.enter_context(peer(broker, "agent-a")).connected()

    assert agent_a.publish(B_ROBOT, b"forged-batch").value == NOT_AUTHORIZED
    assert agent_a.publish(status("agent-b"), b"forged-status").value == NOT_AUTHORIZED
    assert agent_a.publish(acks("agent-b"), b"forged-ack").value == NOT_AUTHORIZED
    assert agent_a.publish(f"{SITE}/pressing/line-3/press-9/events", b"x").value == NOT_AUTHORIZED
    assert not agent_a.publish(A_PRESS_1, b"barrier").is_failure
    observer.wait_for(A_PRESS_1, b"barrier")
    assert observer.payloads() == [b"barrier"]


def test_agent_cannot_read_another_agents_acks(broker: Broker, clients: ExitStack) -> None:
    agent_a = clients.enter_context(peer(broker, "agent-a")).connected()
    agent_b = clients.enter_context(peer(broker, "agent-b")).connected()
    # 2.0.11 grants every SUBSCRIBE; the read right is checked per delivered message
    assert not agent_a.subscribe(acks("agent-b")).is_failure
    assert not agent_a.subscribe(acks("agent-a")).is_failure
    agent_b.subscribe(acks("agent-b"))
    collector = clients.enter_context(peer(broker, COLLECTOR)).connected()

    assert not collector.publish(acks("agent-b"), b"ack-for-b").is_failure
    assert not collector.publish(acks("agent-a"), b"barrier").is_failure
    agent_b.wait_for(acks("agent-b"), b"ack-for-b")  # it was published and routed
    agent_a.wait_for(acks("agent-a"), b"barrier")
    assert agent_a.payloads() == [b"barrier"]


def test_collector_receives_events_through_share_and_acks_the_agent(
    broker: Broker, clients: ExitStack
) -> None:
    agent = clients.enter_context(peer(broker, "agent-a")).connected()
    agent.subscribe(acks("agent-a"))
    collector = clients.enter_context(peer(broker, COLLECTOR)).connected()
    # the ACL has no $share line: the read right on the plain events topic is what counts
    assert not collector.subscribe(SHARED_EVENTS).is_failure

    assert not agent.publish(A_PRESS_1, b"batch-1").is_failure
    assert not agent.publish(A_PRESS_2, b"batch-2").is_failure
    collector.wait_for(A_PRESS_1, b"batch-1")
    collector.wait_for(A_PRESS_2, b"batch-2")
    assert not collector.publish(acks("agent-a"), b"ack-1").is_failure
    agent.wait_for(acks("agent-a"), b"ack-1")
    assert collector.publish(A_PRESS_1, b"forged").value == NOT_AUTHORIZED
    assert collector.publish(status(COLLECTOR), b"fake").value == NOT_AUTHORIZED  # the deny line


def test_a_share_member_without_read_right_swallows_its_turn(
    broker: Broker, clients: ExitStack
) -> None:
    """Mosquitto 2.0.11 behaviour to know about (docs/mqtt-broker.md): any user may join
    the collectors' share group; the broker hands it every other batch round-robin, the
    read check then drops that batch, and the collector never sees it (the agent resends
    it after its ack timeout). If this starts to fail, Mosquitto changed: update the docs."""
    collector = clients.enter_context(peer(broker, COLLECTOR)).connected()
    collector.subscribe(SHARED_EVENTS)
    intruder = clients.enter_context(peer(broker, "agent-b")).connected()
    assert not intruder.subscribe(SHARED_EVENTS).is_failure
    agent = clients.enter_context(peer(broker, "agent-a")).connected()
    batches = [f"batch-{n}".encode() for n in range(4)]
    for batch in batches:
        assert not agent.publish(A_PRESS_1, batch).is_failure
    intruder.close()  # leaves the group: the barrier can only go to the collector
    assert not agent.publish(A_PRESS_1, b"barrier").is_failure
    collector.wait_for(A_PRESS_1, b"barrier")
    assert intruder.payloads() == []
    assert collector.payloads() == [batches[0], batches[2], b"barrier"]
    # what is left to notice it by: log_type subscribe
    assert f" {intruder.client_id} 1 {SHARED_EVENTS}\n" in broker.log()


def test_queued_batches_for_an_offline_collector_survive_a_restart(
    site: Site, tmp_path: Path, clients: ExitStack
) -> None:
    broker = start_broker(site, tmp_path / "broker")
    try:
        # collector-1 connects as the collector must (clean start off, session expiry set);
        # collector-2 starts clean, which 2.0.11 keeps in memory but never saves to disk
        for client_id, group, clean in (("collector-1", "g1", False), ("collector-2", "g2", True)):
            with peer(broker, COLLECTOR, client_id=client_id) as collector:
                collector.connected(clean_start=clean, session_expiry_s=3600)
                collector.subscribe(SHARED_EVENTS.replace("lineside-collectors", group))
        with peer(broker, "agent-a") as agent:
            agent.connected()
            for n in range(3):
                assert not agent.publish(A_PRESS_1, f"batch-{n}".encode()).is_failure
        broker.mosquitto.stop(graceful=True)  # SIGTERM: the broker saves mosquitto.db
        broker.mosquitto.start()

        back = clients.enter_context(peer(broker, COLLECTOR, client_id="collector-1"))
        back.connected(clean_start=False, session_expiry_s=3600)
        assert back.session_present
        wait_until(lambda: len(back.payloads()) == 3, TIMEOUT_S, "the 3 queued batches")
        assert back.payloads() == [b"batch-0", b"batch-1", b"batch-2"]

        lost = clients.enter_context(peer(broker, COLLECTOR, client_id="collector-2"))
        lost.connected(clean_start=False, session_expiry_s=3600)
        assert not lost.session_present, "2.0.11 now saves sessions started clean: update docs"
    finally:
        broker.mosquitto.stop()


def test_a_1_mib_batch_passes_and_a_larger_packet_is_refused(
    broker: Broker, clients: ExitStack
) -> None:
    collector = clients.enter_context(peer(broker, COLLECTOR)).connected()
    collector.subscribe(SHARED_EVENTS)
    agent = clients.enter_context(peer(broker, "agent-a")).connected()
    batch = secrets.token_bytes(ONE_MIB)
    assert not agent.publish(A_PRESS_1, batch).is_failure
    wait_until(lambda: collector.payloads(), TIMEOUT_S, "the 1 MiB batch")
    assert hashlib.sha256(collector.payloads()[0]).digest() == hashlib.sha256(batch).digest()

    # max_packet_size: 1 MiB + 128 KiB; a packet above it costs the sender its connection
    too_large = b"x" * (ONE_MIB + 128 * 1024)
    agent.client.publish(A_PRESS_1, too_large, qos=1)  # no PUBACK will come: not .publish()
    wait_until(lambda: agent.disconnected is not None, TIMEOUT_S, "the oversize disconnect")
    assert "disconnected due to oversize packet" in broker.log()
    again = clients.enter_context(peer(broker, "agent-a")).connected()
    assert not again.publish(A_PRESS_1, b"barrier").is_failure
    collector.wait_for(A_PRESS_1, b"barrier")
    assert len(collector.payloads()) == 2


def test_mtls_alternative_uses_the_certificate_cn_as_user(
    site: Site, tmp_path: Path, clients: ExitStack
) -> None:
    broker = start_broker(site, tmp_path / "broker", mtls=True)
    try:
        # no user name, no password: the certificate's CN (agent-a) is the user for the ACL
        agent = clients.enter_context(peer(broker, None, client_cert=True)).connected()
        assert not agent.publish(A_PRESS_1, b"batch-1").is_failure
        assert agent.publish(B_ROBOT, b"forged").value == NOT_AUTHORIZED
        # a password alone no longer opens the TLS listener
        no_cert = clients.enter_context(peer(broker, "agent-a"))
        assert no_cert.connect() is None
    finally:
        broker.mosquitto.stop()
