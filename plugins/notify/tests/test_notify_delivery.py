"""Notifiers end to end: the plugin registered on a real PluginManager, events handed to hacore's
EventDispatcher as the daemon does, and real receivers: a script that writes down what it got, an
HTTP server and an SMTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hacore.config.model import ClusterConfig
from hacore.dispatch import EventDispatcher
from hacore.events import NodeEvent, ResourceEvent
from hacore.lab.netns import wait_for
from hacore.plugins import plugin_manager
from notify_events import FAILOVER, node_event, resource_event
from notify_servers import Mailbox, Webhook

from hacore_notify.plugin import NotifyPlugin

# What the script notifier writes for each event: its HACORE_* variables, sorted, its
# arguments, and a separator.
RECORDER = """\
#!/bin/sh
out="$1"; shift
{ env | grep '^HACORE_' | sort; for arg in "$@"; do echo "ARG=$arg"; done; echo ---; } >> "$out"
"""
# Hangs: starts a child (which must die with it, at the timeout) and waits for it.
HANGER = """\
#!/bin/sh
sleep 30 &
echo "$!" >> "$1"
wait
"""


class Cluster:
    """The notify plugin as a running daemon holds it: started, fed through a dispatcher."""

    def __init__(self, config: ClusterConfig) -> None:
        self.plugin = NotifyPlugin()
        self.config = config
        pm = plugin_manager(load_entrypoints=False, plugins=[self.plugin])
        self.dispatcher = EventDispatcher(pm)
        pm.hook.hacore_daemon_started(config=config)
        self.pm = pm

    def send(self, *events: NodeEvent | ResourceEvent) -> None:
        for event in events:
            if isinstance(event, NodeEvent):
                self.dispatcher.node_event(event)
            else:
                self.dispatcher.resource_event(event)

    def stop(self) -> None:
        self.dispatcher.close(timeout_s=5)
        self.pm.hook.hacore_daemon_stopping(config=self.config)


@pytest.fixture
def cluster(config: ClusterConfig) -> Iterator[list[Cluster]]:
    """Start with ``started.append(Cluster(config))`` once notify.toml is written."""
    started: list[Cluster] = []
    yield started
    for running in started:
        running.stop()


def script(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def notify_toml(config: ClusterConfig, text: str) -> None:
    (config.source / "notify.toml").write_text(textwrap.dedent(text))


def blocks(path: Path) -> list[dict[str, str]]:
    """The recorder's output: one dict of NAME -> value per event."""
    if not path.exists():
        return []
    out = []
    for block in path.read_text().split("---\n")[:-1]:
        out.append(dict(line.split("=", 1) for line in block.splitlines()))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie is dead, whoever reaps it


def test_a_script_gets_every_event_in_order_as_hacore_variables(
    config: ClusterConfig, tmp_path: Path, cluster: list[Cluster]
) -> None:
    recorder = script(tmp_path, "recorder.sh", RECORDER)
    out = tmp_path / "events.txt"
    # Arguments reach the script as they are written: no shell ever sees them.
    notify_toml(
        config,
        f"""
        [[notifier]]
        kind = "exec"
        command = ["{recorder}", "{out}", "$(touch {tmp_path}/pwned); *"]
        """,
    )
    cluster.append(Cluster(config))

    cluster[0].send(*FAILOVER)

    wait_for(lambda: len(blocks(out)) == len(FAILOVER), 10, what="5 events")
    got = blocks(out)
    common = {
        "HACORE_CLUSTER": "linux-ha",
        "HACORE_LOCAL_NODE": "pc2",
        "HACORE_TIMESTAMP": "2024-05-01T12:00:00+00:00",
        "ARG": f"$(touch {tmp_path}/pwned); *",
    }
    assert got[0] == common | {
        "HACORE_EVENT": "node",
        "HACORE_SEQUENCE": "1",
        "HACORE_NODE": "pc1",
        "HACORE_OLD_STATE": "active",
        "HACORE_NEW_STATE": "dead",
        "HACORE_REASON": "no keepalive for 10000 ms",
    }
    assert got[1] == common | {
        "HACORE_EVENT": "resource",
        "HACORE_SEQUENCE": "2",
        "HACORE_NODE": "pc2",
        "HACORE_GROUP": "IPaddr::198.51.100.55/24/eth0",
        "HACORE_RESOURCE": "IPaddr::198.51.100.55/24/eth0",
        "HACORE_ACTION": "start",
        "HACORE_RESULT": "SUCCESS",
        "HACORE_RC": "0",
        "HACORE_DETAIL": "",
    }
    assert "HACORE_RESOURCE" not in got[3]  # the group-wide failover names no resource
    assert [
        (b["HACORE_SEQUENCE"], b.get("HACORE_ACTION", b.get("HACORE_NEW_STATE"))) for b in got
    ] == [
        ("1", "dead"),
        ("2", "start"),
        ("3", "start"),
        ("4", "failover"),
        ("5", "up"),
    ]
    assert not (tmp_path / "pwned").exists()


def test_a_daemon_variable_never_leaks_into_an_event(
    config: ClusterConfig, tmp_path: Path, cluster: list[Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HACORE_RESOURCE", "stale")
    recorder = script(tmp_path, "recorder.sh", RECORDER)
    out = tmp_path / "events.txt"
    notify_toml(config, f'[[notifier]]\nkind = "exec"\ncommand = ["{recorder}", "{out}"]\n')
    cluster.append(Cluster(config))

    cluster[0].send(node_event())

    wait_for(lambda: blocks(out), 10, what="the event")
    (got,) = blocks(out)
    assert "HACORE_RESOURCE" not in got


def test_a_webhook_receives_every_event_in_order_as_json(
    config: ClusterConfig, webhook: Webhook, cluster: list[Cluster]
) -> None:
    notify_toml(config, f'[[notifier]]\nkind = "webhook"\nurl = "{webhook.url}"\n')
    cluster.append(Cluster(config))

    cluster[0].send(*FAILOVER)

    wait_for(lambda: len(webhook.bodies()) == 5, 10, what="5 posts")
    bodies = webhook.bodies()
    assert [post.path for post in webhook.posts] == ["/hooks/hacore"] * 5
    assert {post.content_type for post in webhook.posts} == {"application/json"}
    assert bodies[0] == {
        "event": "node",
        "sequence": 1,
        "cluster": "linux-ha",
        "local_node": "pc2",
        "timestamp": "2024-05-01T12:00:00+00:00",
        "node": "pc1",
        "old_state": "active",
        "new_state": "dead",
        "reason": "no keepalive for 10000 ms",
    }
    assert bodies[3] == {
        "event": "resource",
        "sequence": 4,
        "cluster": "linux-ha",
        "local_node": "pc2",
        "timestamp": "2024-05-01T12:00:00+00:00",
        "node": "pc2",
        "group": "IPaddr::198.51.100.55/24/eth0",
        "resource": None,
        "action": "failover",
        "result": "SUCCESS",
        "rc": 0,
        "detail": "",
    }
    assert [b["sequence"] for b in bodies] == [1, 2, 3, 4, 5]


def test_a_mail_is_sent_for_each_event_in_order(
    config: ClusterConfig, mailbox: Mailbox, cluster: list[Cluster]
) -> None:
    notify_toml(
        config,
        f"""
        [[notifier]]
        kind = "mail"
        smtp = "{mailbox.address}"
        to = ["ops@example.org", "oncall@example.org"]
        """,
    )
    cluster.append(Cluster(config))

    cluster[0].send(*FAILOVER)

    wait_for(lambda: len(mailbox.received()) == 5, 10, what="5 mails")
    mails = mailbox.received()
    first = mails[0]
    assert (first.sender, first.recipients) == (
        "hacore@pc2",
        ["ops@example.org", "oncall@example.org"],
    )
    assert first.message["Subject"] == "[hacore linux-ha] node pc1: active -> dead"
    assert first.message["To"] == "ops@example.org, oncall@example.org"
    assert "reason: no keepalive for 10000 ms" in first.message.get_content()
    assert [m.message["Subject"] for m in mails[1:]] == [
        "[hacore linux-ha] group IPaddr::198.51.100.55/24/eth0: "
        "IPaddr::198.51.100.55/24/eth0 start on pc2: SUCCESS",
        "[hacore linux-ha] group IPaddr::198.51.100.55/24/eth0: apache start on pc2: SUCCESS",
        "[hacore linux-ha] group IPaddr::198.51.100.55/24/eth0: failover on pc2: SUCCESS",
        "[hacore linux-ha] node pc1: dead -> up",
    ]


def test_the_events_filter_picks_the_kinds_a_notifier_hears_of(
    config: ClusterConfig, webhook: Webhook, cluster: list[Cluster]
) -> None:
    notify_toml(
        config,
        f'[[notifier]]\nkind = "webhook"\nurl = "{webhook.url}"\nevents = ["node"]\n',
    )
    cluster.append(Cluster(config))

    cluster[0].send(*FAILOVER)
    cluster[0].stop()  # drains: everything there is to deliver has been delivered
    cluster.clear()

    assert [(b["event"], b["sequence"]) for b in webhook.bodies()] == [("node", 1), ("node", 5)]


def test_a_hanging_script_is_killed_at_its_timeout_and_delays_no_other_notifier(
    config: ClusterConfig,
    tmp_path: Path,
    webhook: Webhook,
    cluster: list[Cluster],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hanger = script(tmp_path, "hang.sh", HANGER)
    pids = tmp_path / "pids"
    notify_toml(
        config,
        f"""
        [[notifier]]
        kind = "exec"
        name = "hanging"
        command = ["{hanger}", "{pids}"]
        timeout = "1s"

        [[notifier]]
        kind = "webhook"
        url = "{webhook.url}"
        """,
    )
    cluster.append(Cluster(config))
    started = time.monotonic()

    cluster[0].send(node_event(), resource_event(), node_event("pc1", "dead", "up"))

    # The webhook has everything while the script still hangs on the first event.
    wait_for(lambda: len(webhook.bodies()) == 3, 10, what="the webhook's 3 events")
    wait_for(lambda: pids.exists() and pids.read_text(), 10, what="the script's child's pid")
    first_child = int(pids.read_text())
    assert alive(first_child)
    assert len(pids.read_text().split()) == 1
    # Killed with its whole process group at the timeout, then the next event runs it again.
    wait_for(lambda: not alive(first_child), 5, what="the script's child to be killed")
    killed_after = time.monotonic() - started
    assert 0.9 < killed_after < 4
    wait_for(
        lambda: cluster[0].plugin.stats()["notifier hanging"].failed == 3,
        10,
        what="three timeouts",
    )
    stats = cluster[0].plugin.stats()
    assert stats["notifier hanging"].overran == 0  # the notifier kept its own timeout
    assert stats["notifier webhook #2"].delivered == 3
    assert not any(alive(int(pid)) for pid in pids.read_text().split())
    timeouts = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith("notifier hanging")
    ]
    assert timeouts[0] == (
        f"notifier hanging: node pc1: active -> dead failed: "
        f"NotifierError: {hanger} killed after its 1 s timeout"
    )
    print(f"\nhanging script killed {killed_after:.2f} s after the first event")


def test_failures_are_logged_and_the_next_event_still_goes(
    config: ClusterConfig,
    tmp_path: Path,
    webhook: Webhook,
    cluster: list[Cluster],
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = script(tmp_path, "fail.sh", "#!/bin/sh\necho 'cannot page:' >&2\necho busy\nexit 3\n")
    webhook.status = 500
    notify_toml(
        config,
        f"""
        [[notifier]]
        kind = "exec"
        name = "pager"
        command = ["{failing}"]

        [[notifier]]
        kind = "webhook"
        name = "chat"
        url = "{webhook.url}"
        """,
    )
    cluster.append(Cluster(config))

    cluster[0].send(node_event(), node_event("pc1", "dead", "up"))

    wait_for(
        lambda: all(s.failed == 2 for s in cluster[0].plugin.stats().values()),
        10,
        what="both notifiers to fail twice",
    )
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        f"notifier pager: node pc1: active -> dead failed: "
        f"NotifierError: {failing} exited with 3: cannot page: busy"
    ) in messages
    assert (
        "notifier chat: node pc1: dead -> up failed: "
        "HTTPError: HTTP Error 500: Internal Server Error"
    ) in messages


def test_without_notify_toml_nothing_is_started_and_events_are_ignored(
    config: ClusterConfig,
) -> None:
    plugin = NotifyPlugin()
    threads_before = len(os.listdir("/proc/self/task"))

    plugin.hacore_daemon_started(config)
    plugin.hacore_node_event(node_event())
    plugin.hacore_daemon_stopping(config)

    assert len(os.listdir("/proc/self/task")) == threads_before
    assert plugin.stats() == {}
