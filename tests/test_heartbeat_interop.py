"""A mixed cluster: one node runs the real Debian Heartbeat 3.0.6, the other hacore, both from
the same ha.cf and authkeys (sha1). Each must see the other active, and a dead one dead; and
Heartbeat's habits on the wire (statuses after its goodbye) are read as Heartbeat means them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from hacore.config.model import Timers
from hacore.lab.heartbeat import HeartbeatNode, start_heartbeat, write_heartbeat_config
from hacore.lab.netns import Lab
from hacore.lab.nodes import HacoreNode, localize
from hacore.membership.detector import Membership
from hacore.membership.events import Event, NodeReturned, NodeState, NodeStateChanged, Send
from hacore.membership.wire import Message
from hacore.resources.heartbeat_peer import ASK, ASK_RETRY_S, HeartbeatPeer

KEEPALIVE_MS = 200
DEADTIME_MS = 2000
START_TIMEOUT = 30.0


def _mixed(lab: Lab, tmp_path: Path) -> tuple[HeartbeatNode, HacoreNode]:
    pc1, pc2 = lab.add_host("pc1"), lab.add_host("pc2")
    shared = write_heartbeat_config(
        tmp_path / "ha.d",
        nodes=["pc1", "pc2"],
        keepalive=KEEPALIVE_MS,
        deadtime=DEADTIME_MS,
        initdead=DEADTIME_MS,
        auth_key="interop-secret",
        auth_method="sha1",
    )
    ours = tmp_path / "hacore"
    shutil.copytree(shared, ours)
    localize(ours, "pc2")
    heartbeat = start_heartbeat(pc1, shared)
    hacore = HacoreNode(pc2, ours).start()
    hacore.wait_node_state("pc1", "active", START_TIMEOUT)
    heartbeat.wait_for_log(r"Status update for node pc2: status active", timeout=START_TIMEOUT)
    return heartbeat, hacore


@pytest.mark.netns
@pytest.mark.heartbeat
def test_hacore_declares_a_killed_heartbeat_node_dead_within_deadtime(
    lab: Lab, tmp_path: Path
) -> None:
    heartbeat, hacore = _mixed(lab, tmp_path)
    killed_at = time.monotonic()
    heartbeat.kill()
    lab.link_down(heartbeat.host)
    hacore.wait_node_state("pc1", "dead", DEADTIME_MS / 1000 + 10)
    assert time.monotonic() - killed_at <= (DEADTIME_MS + 3 * KEEPALIVE_MS) / 1000 + 1.0
    status = hacore.status()
    assert status is not None
    # Heartbeat's datagrams were all accepted: nothing it sent counted as hostile.
    assert not status["rejected"], status["rejected"]


@pytest.mark.netns
@pytest.mark.heartbeat
def test_heartbeat_declares_a_killed_hacore_node_dead(lab: Lab, tmp_path: Path) -> None:
    heartbeat, hacore = _mixed(lab, tmp_path)
    mark = heartbeat.log_mark()
    hacore.kill()
    lab.link_down(hacore.host)
    heartbeat.wait_for_log(r"node pc2: is dead", timeout=DEADTIME_MS / 1000 + 10, since=mark)
    assert heartbeat.running()


def test_statuses_after_a_peers_shutdone_are_its_last_breaths_not_a_return() -> None:
    # Heartbeat keeps its keepalives going (st=active) for a second or two after t=shutdone,
    # until its final shutdown or its restart after a partition (a new generation).
    timers = Timers(keepalive_ms=200, deadtime_ms=2000, warntime_ms=1000, initdead_ms=2000)
    wall = 1_764_000_000.0

    def node(name: str, generation: int) -> Membership:
        uuid = name.encode().ljust(16, b"\0")
        return Membership(
            local=name, nodes=["pc1", "pc2"], links=["eth0"], timers=timers,
            generation=generation, uuid=uuid, now=0.0,
        )  # fmt: skip

    heartbeat, hacore = node("pc1", 7), node("pc2", 9)

    def deliver(events: list[Event], now: float) -> list[Event]:
        got: list[Event] = []
        for event in events:
            if isinstance(event, Send):
                got += hacore.receive(event.message, "eth0", now, wall + now)
        return got

    deliver([Send(heartbeat.status(wall))], 0.1)
    assert hacore.node_state("pc1") is NodeState.UP
    goodbye = deliver(heartbeat.shutdown(wall + 0.2), 0.2)
    assert NodeStateChanged("pc1", NodeState.UP, NodeState.DEAD, "shutdown notice") in goodbye
    heartbeat.state = NodeState.ACTIVE  # what Heartbeat's last statuses say
    after = deliver([Send(heartbeat.status(wall + 0.4))], 0.4)
    assert not [e for e in after if isinstance(e, (NodeReturned, NodeStateChanged))]
    assert hacore.node_state("pc1") is NodeState.DEAD

    # Its restart (a new generation) is a real return.
    restarted = node("pc1", 8)
    back = deliver([Send(restarted.status(wall + 3))], 3.0)
    assert hacore.node_state("pc1") is not NodeState.DEAD, back


def _from_heartbeat(type_: str, **values: str) -> Message:
    return Message((("t", type_), *values.items(), ("src", "pc1")))


def test_an_ignored_standby_request_is_asked_again_and_a_late_answer_still_counts() -> None:
    # Heartbeat ignores ask_resources while either side is in flux, and tells nobody.
    hb = HeartbeatPeer("pc1")
    assert hb.ask("foreign", now=0.0) == [(ASK, [("rsc_hold", "foreign"), ("info", "me")])]
    assert hb.ask("foreign", now=ASK_RETRY_S / 2) == []
    assert hb.ask("foreign", now=ASK_RETRY_S) != []
    # Its answer to the first request, retransmitted after the second went out.
    hb.on_message(_from_heartbeat(ASK, rsc_hold="foreign", info="other"), 3.0, 3000)
    assert hb.may_stop()


def test_a_heartbeat_peer_has_started_up_once_it_says_it_is_stable() -> None:
    hb = HeartbeatPeer("pc1")
    hb.on_message(_from_heartbeat("resource", rsc_hold="none", isstable="0"), 0.0, 0)
    assert not hb.started_up
    hb.on_message(_from_heartbeat("resource", rsc_hold="local", isstable="1"), 0.1, 100)
    assert hb.started_up and hb.hold == "local"
    hb.on_message(_from_heartbeat("starting"), 0.2, 200)  # it restarted
    assert not hb.started_up and hb.hold is None


def test_a_late_done_of_an_earlier_standby_does_not_end_the_current_one() -> None:
    hb = HeartbeatPeer("pc1")
    gen = 7
    # Its hb_standby opens a handshake at seq 0x2e; the done of the previous one (0x2b), lost
    # and retransmitted, arrives after it and must not let us take yet.
    hb.on_message(_from_heartbeat(ASK, rsc_hold="all", info="me"), 1.0, 1000, (gen, 0x2E))
    hb.on_message(_from_heartbeat(ASK, rsc_hold="all", info="done"), 1.1, 1100, (gen, 0x2B))
    assert not hb.ready_to_take
    assert hb.settled() == []  # we say nothing before it has really released
    hb.on_message(_from_heartbeat(ASK, rsc_hold="all", info="done"), 1.5, 1500, (gen, 0x30))
    assert hb.ready_to_take
    assert hb.settled() == [(ASK, [("rsc_hold", "all"), ("info", "done")])]


def test_its_t_resource_retransmitted_after_its_done_is_taken_at_once() -> None:
    hb = HeartbeatPeer("pc1")
    gen = 7
    hb.on_message(_from_heartbeat("resource", rsc_hold="all", isstable="1"), 0.0, 0, (gen, 0x10))
    hb.on_message(_from_heartbeat(ASK, rsc_hold="all", info="me"), 1.0, 1000, (gen, 0x1C))
    hb.on_message(_from_heartbeat(ASK, rsc_hold="all", info="done"), 1.2, 1200, (gen, 0x1F))
    # Sent before the done, lost, retransmitted after it: what it holds is true at once.
    late = _from_heartbeat("resource", rsc_hold="none", info="standby", isstable="1")
    hb.on_message(late, 1.4, 1400, (gen, 0x1D))
    assert hb.hold == "none"


def test_a_late_t_starting_does_not_reset_a_handshake_under_way() -> None:
    hb = HeartbeatPeer("pc1")
    gen = 7
    hb.on_message(_from_heartbeat("resource", rsc_hold="local", isstable="1"), 0.0, 0, (gen, 0x20))
    assert hb.ask("foreign", now=1.0) != []
    hb.on_message(_from_heartbeat(ASK, rsc_hold="foreign", info="other"), 1.1, 1100, (gen, 0x21))
    # Its start-up t=starting (seq 0xa), retransmitted in the middle of our move.
    hb.on_message(_from_heartbeat("starting"), 1.2, 1200, (gen, 0x0A))
    assert hb.may_stop() and hb.hold == "local"
    # A real restart (a new generation) still resets everything.
    hb.on_message(_from_heartbeat("starting"), 5.0, 5000, (gen + 1, 0x01))
    assert not hb.may_stop() and hb.hold is None
