"""Real hacore daemons on a bridge in network namespaces: membership over bcast and ucast,
death within deadtime, restart by generation, and hostile datagrams that change nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

import pytest

from hacore.lab.netns import Host, Lab, wait_for
from hacore.lab.nodes import HacoreNode, wait_all_active, write_cluster

pytestmark = pytest.mark.netns

KEEPALIVE_MS = 200
DEADTIME_MS = 1500
START_TIMEOUT = 20.0


def _entry(status: dict[str, object], node: str) -> dict[str, object]:
    for entry in status["nodes"]:  # type: ignore[attr-defined]
        if entry["name"] == node:
            return entry  # type: ignore[no-any-return]
    raise AssertionError(f"{node} not in status")


def _logged(node: HacoreNode, line: str) -> bool:
    return line in node.log()


def _cluster(lab: Lab, tmp_path: Path, count: int, media: str) -> list[HacoreNode]:
    hosts = [lab.add_host(f"pc{i + 1}") for i in range(count)]
    # With ucast one ha.cf serves every node: the line naming the node itself is skipped there.
    links = {
        "bcast": ["bcast eth0"],
        "mcast": ["mcast eth0 239.255.0.94 694 1 0"],
        "ucast": [f"ucast eth0 {h.address}" for h in hosts],
        "ucast6": [f"ucast6 eth0 {h.address6}" for h in hosts],
        "mcast6": ["mcast6 eth0 ff12::94 694 1 0"],
    }[media]
    dirs = write_cluster(
        tmp_path,
        [h.name for h in hosts],
        keepalive=KEEPALIVE_MS,
        deadtime=DEADTIME_MS,
        links=links,
    )
    return [HacoreNode(h, dirs[h.name]).start() for h in hosts]


@pytest.mark.parametrize(
    ("count", "media"),
    [
        (2, "bcast"),
        (3, "bcast"),
        (2, "ucast"),
        (3, "ucast"),
        (2, "mcast"),
        (2, "ucast6"),
        (2, "mcast6"),
    ],
)
def test_a_killed_node_is_declared_dead_after_deadtime_and_recognised_when_it_restarts(
    lab: Lab, tmp_path: Path, count: int, media: str
) -> None:
    nodes = _cluster(lab, tmp_path, count, media)
    wait_all_active(nodes, START_TIMEOUT)
    victim, survivors = nodes[-1], nodes[:-1]
    generation_before = _entry(survivors[0].wait_node_state(victim.name, "active", 5), victim.name)[
        "generation"
    ]

    killed_at = time.monotonic()
    victim.kill()
    lab.link_down(victim.host)
    for survivor in survivors:
        status = survivor.wait_node_state(victim.name, "dead", timeout=DEADTIME_MS / 1000 + 10)
        seen_at = time.monotonic()
        entry = _entry(status, victim.name)
        # Silence before the verdict, measured by the daemon itself: at least deadtime, and
        # within two keepalives more (the timer fires on the deadline, not on the next tick).
        silence_ms = int(entry["last_heard_ms"]) - int(entry["state_age_ms"])  # type: ignore[call-overload]
        assert DEADTIME_MS <= silence_ms <= DEADTIME_MS + 2 * KEEPALIVE_MS, silence_ms
        declared_after_kill = seen_at - int(entry["state_age_ms"]) / 1000 - killed_at  # type: ignore[call-overload]
        assert declared_after_kill <= (DEADTIME_MS + 2 * KEEPALIVE_MS) / 1000
        # The log is written by a thread behind a queue: wait for the line, bounded.
        wait_for(partial(_logged, survivor, f"node {victim.name}: is dead"), 5, what="log")

    lab.link_up(victim.host)
    victim.start()
    wait_all_active(nodes, START_TIMEOUT)
    for survivor in survivors:
        entry = _entry(survivor.status() or {}, victim.name)
        assert int(entry["generation"]) > int(generation_before)  # type: ignore[call-overload]
        wait_for(partial(_logged, survivor, f"node {victim.name} restarted"), 5, what="log")


def test_a_graceful_stop_is_seen_at_once_not_after_deadtime(lab: Lab, tmp_path: Path) -> None:
    a, b = _cluster(lab, tmp_path, 2, "bcast")
    wait_all_active([a, b], START_TIMEOUT)
    stopped_at = time.monotonic()
    assert b.stop() == 0
    a.wait_node_state(b.name, "dead", timeout=DEADTIME_MS / 1000)
    assert time.monotonic() - stopped_at < DEADTIME_MS / 1000
    wait_for(lambda: "shutdown notice" in a.log(), 5, what="the shutdown notice in the log")


_ATTACK = textwrap.dedent(
    """
    import json, os, socket, sys, time
    from hacore.config.model import Auth, AuthKey, AuthMethod
    from hacore.membership.envelope import seal
    from hacore.membership.wire import Message

    target, port, victim = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listen.bind(("", port))
    listen.settimeout(10)
    for _ in range(50):                    # a real, signed keepalive of pc2, off the wire
        captured, (sender, _) = listen.recvfrom(65536)
        if sender == victim:
            break
    send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    def shoot(data):
        send.sendto(data, (target, port))
    wrong = Auth(1, (AuthKey(1, AuthMethod.SHA1, b"not-the-key"),))
    forged = Message.of(("t", "status"), ("st", "dead"), ("src", "pc2"), ("seq", "ffffff"),
                        ("hg", "ffffffff"), ("ts", "%x" % int(time.time())))
    shoot(seal(forged, wrong))                       # wrong key
    shoot(captured)                                  # replayed at once
    shoot(captured[: len(captured) // 2])            # truncated
    shoot(b"###\\n" + os.urandom(20000))              # oversized
    for _ in range(20):
        shoot(os.urandom(300))                       # noise
    time.sleep(0.6)                                  # longer than a keepalive: a stale replay
    shoot(captured)
    print(json.dumps({"captured": len(captured)}))
    """
)


def test_forged_replayed_truncated_oversized_and_random_datagrams_change_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    a, b = _cluster(lab, tmp_path, 2, "bcast")
    attacker: Host = lab.add_host("mallory")
    wait_all_active([a, b], START_TIMEOUT)

    done = attacker.exec(
        [sys.executable, "-c", _ATTACK, a.host.address, "694", b.host.address], timeout=30
    )
    assert json.loads(done.stdout)["captured"] > 0

    def counted(status: dict[str, object]) -> bool:
        rejected: dict[str, int] = status["rejected"]  # type: ignore[assignment]
        return (
            rejected.get("bad_auth", 0) >= 1
            and rejected.get("replay", 0) >= 2
            and rejected.get("truncated", 0) + rejected.get("malformed", 0) >= 1
            and rejected.get("oversized", 0) >= 1
        )

    status = a.wait_status(counted, 5, "the hostile datagrams counted")
    assert sum(status["rejected"].values()) >= 24
    # Nothing was accepted: pc2 is still active (the forged "dead" status did not land) and
    # both daemons still run.
    assert _entry(status, b.name)["state"] == "active"
    assert a.running() and b.running()
    assert "Traceback" not in a.log()


def test_hactl_status_shows_both_nodes_links_and_last_heard(lab: Lab, tmp_path: Path) -> None:
    a, b = _cluster(lab, tmp_path, 2, "bcast")
    wait_all_active([a, b], START_TIMEOUT)
    hactl = [sys.executable, "-m", "hacore", "status", "--config-dir", str(a.config_dir)]
    human = subprocess.run(hactl, capture_output=True, text=True, timeout=30, check=True).stdout
    assert "local node pc1 is active" in human
    assert re.search(r"(?m)^pc2\s+active\s+\d+\.\d s ago\s+eth0 up$", human), human
    machine = json.loads(
        subprocess.run(
            [*hactl, "--json"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    )
    assert machine["local"]["state"] == "active"
    assert machine["links"] == ["eth0"]
    (peer,) = machine["nodes"]
    assert peer["name"] == "pc2" and peer["state"] == "active"
    assert peer["last_heard_ms"] < 2 * KEEPALIVE_MS + 500


def test_nodes_speak_heartbeats_resource_exchange(lab: Lab, tmp_path: Path) -> None:
    hosts = [lab.add_host("pc1"), lab.add_host("pc2")]
    dirs = write_cluster(
        tmp_path, ["pc1", "pc2"], keepalive=KEEPALIVE_MS, deadtime=DEADTIME_MS,
        haresources=["pc1 Dummy"],
    )  # fmt: skip
    a, b = (HacoreNode(h, dirs[h.name]).start() for h in hosts)
    wait_all_active([a, b], START_TIMEOUT)

    def exchanged(status: dict[str, object]) -> bool:
        received: dict[str, int] = status["received"]  # type: ignore[assignment]
        groups: list[dict[str, object]] = status["groups"]  # type: ignore[assignment]
        return (
            received.get("starting", 0) >= 1
            and received.get("resource", 0) >= 1
            and groups[0]["holders"] == ["pc1"]
        )

    # Each side sent t=starting at comm-up and t=resource when what it holds changed.
    b.wait_status(exchanged, START_TIMEOUT, "starting and resource messages from pc1")
    a.wait_status(exchanged, START_TIMEOUT, "starting and resource messages from pc2")
