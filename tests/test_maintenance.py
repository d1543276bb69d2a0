"""The resource manager's reload operations and maintenance mode, in process: one node alone,
Dummy agents whose state files live in the test's directory, the real Runner threads.

What crosses the kernel here is only files; the two-node behaviour (peers neither taking nor
giving) is tested in namespaces in tests/test_reload_netns.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from hacore.config.model import Auth, AuthKey, AuthMethod, ClusterConfig, Group, Link, LinkKind
from hacore.config.model import Resource as Res
from hacore.events import ResourceEvent
from hacore.resources.binding import BoundGroup, bind
from hacore.resources.manager import ResourceManager

TIMEOUT = 20.0  # generous: the machine is shared
MONITOR_MS = 50


def _group(tmp: Path, name: str, *more: str, monitor_ms: int | None = MONITOR_MS) -> Group:
    resources = [Res("Dummy", (str(tmp / f"{name}.state"),), monitor_interval_ms=monitor_ms)]
    resources += [Res("Dummy", (str(tmp / f"{m}.state"),)) for m in more]
    return Group("n1", tuple(resources))


def _config(*groups: Group) -> ClusterConfig:
    return ClusterConfig(
        nodes=("n1",),
        local_node="n1",
        links=(Link(LinkKind.BCAST, "eth0"),),
        auth=Auth(1, (AuthKey(1, AuthMethod.SHA256, b"k"),)),
        groups=groups,
    )


def _bound(config: ClusterConfig) -> dict[str, BoundGroup]:
    groups, problems = bind(config)
    assert problems == ()
    return {g.key: g for g in groups}


class Node:
    """A one-node manager and the resource events it reported."""

    def __init__(self, tmp: Path, config: ClusterConfig) -> None:
        self.events: list[ResourceEvent] = []
        self.rm = ResourceManager(
            config,
            _bound(config).values(),
            moves_file=tmp / "state" / "moves.json",
            send=lambda _type, _fields: None,
            on_event=self.events.append,
            maintenance_file=tmp / "state" / "maintenance.json",
        )

    async def up(self) -> None:
        await self.rm.start()
        self.rm.on_comm_up()

    def actions(self, key: str) -> list[str]:
        return [e.action.value for e in self.events if e.group == key and e.resource is None] + [
            f"{e.action.value} {Path(e.resource).name}"
            for e in self.events
            if e.group == key and e.resource is not None
        ]

    def state(self, key: str) -> str | None:
        group = self.rm.groups.get(key)
        return None if group is None else group.state.value


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


# -- reload operations ------------------------------------------------------------------------


def test_an_added_group_starts_and_the_others_are_not_touched(tmp_path: Path) -> None:
    a, b = _group(tmp_path, "a"), _group(tmp_path, "b")
    node = Node(tmp_path, _config(a))

    async def body() -> None:
        await node.up()
        await _until(lambda: node.state(a.key) == "started", "a started")
        before = list(node.events)
        await node.rm.add_group(_bound(_config(a, b))[b.key])
        await _until(lambda: node.state(b.key) == "started", "b started")
        assert (tmp_path / "b.state").exists()
        assert [e for e in node.events if e.group == a.key] == [
            e for e in before if e.group == a.key
        ]
        node.rm.runner.close()

    _run(body)


def test_a_removed_group_is_stopped_and_forgotten(tmp_path: Path) -> None:
    a, b = _group(tmp_path, "a"), _group(tmp_path, "b")
    node = Node(tmp_path, _config(a, b))

    async def body() -> None:
        await node.up()
        await _until(lambda: node.state(b.key) == "started", "b started")
        assert await node.rm.remove_group(b.key)
        assert b.key not in node.rm.groups and not (tmp_path / "b.state").exists()
        assert [g["key"] for g in node.rm.status()] == [a.key]
        assert node.state(a.key) == "started"
        node.rm.runner.close()

    _run(body)


def test_a_changed_group_alone_is_stopped_and_started_again(tmp_path: Path) -> None:
    a, b = _group(tmp_path, "a"), _group(tmp_path, "b")
    node = Node(tmp_path, _config(a, b))
    b2 = dataclasses.replace(b, resources=(*b.resources, *_group(tmp_path, "b2").resources))

    async def body() -> None:
        await node.up()
        await _until(lambda: node.state(b.key) == "started", "b started")
        untouched = node.actions(a.key)
        assert await node.rm.replace_group(_bound(_config(a, b2))[b.key])
        await _until((tmp_path / "b2.state").exists, "b's new resource started")
        await _until(lambda: node.state(b.key) == "started", "b started again")
        assert node.actions(b.key) == [
            "release",
            "start b.state",
            "stop b.state",
            "start b.state",
            "start b2.state",
        ]
        assert node.actions(a.key) == untouched
        node.rm.runner.close()

    _run(body)


def test_a_new_monitor_interval_restarts_nothing(tmp_path: Path) -> None:
    a = _group(tmp_path, "a")
    node = Node(tmp_path, _config(a))
    slower = _group(tmp_path, "a", monitor_ms=60_000)

    async def body() -> None:
        await node.up()
        await _until(lambda: node.state(a.key) == "started", "a started")
        node.rm.update_group(_bound(_config(slower))[a.key])
        (tmp_path / "a.state").unlink()  # the old monitor would restart it within 50 ms
        await asyncio.sleep(20 * MONITOR_MS / 1000)
        assert node.actions(a.key) == ["start a.state"]
        assert node.rm.groups[a.key].resources[0].bound.monitor_interval_s == 60.0
        node.rm.runner.close()

    _run(body)


# -- maintenance mode -------------------------------------------------------------------------


def test_maintenance_neither_monitors_nor_restarts_and_off_recovers(tmp_path: Path) -> None:
    a = _group(tmp_path, "a")
    node = Node(tmp_path, _config(a))

    async def body() -> None:
        await node.up()
        await _until(lambda: node.state(a.key) == "started", "a started")
        await node.rm.set_maintenance(True)
        assert node.rm.announcement().maintenance
        (tmp_path / "a.state").unlink()
        # Twenty monitor intervals in which a managed node would have restarted it.
        await asyncio.sleep(20 * MONITOR_MS / 1000)
        assert not (tmp_path / "a.state").exists()
        assert node.state(a.key) == "started" and node.rm.groups[a.key].failcount == 0
        await node.rm.set_maintenance(False)
        await _until((tmp_path / "a.state").exists, "a recovered")
        assert node.rm.groups[a.key].failcount == 1  # found stopped: restarted in place
        node.rm.runner.close()

    _run(body)


def test_maintenance_survives_a_restart_and_keeps_what_was_held_without_probing(
    tmp_path: Path,
) -> None:
    a, b = _group(tmp_path, "a"), _group(tmp_path, "b")
    first = Node(tmp_path, _config(a))
    state = tmp_path / "state" / "maintenance.json"

    async def before_restart() -> None:
        await first.up()
        await _until(lambda: first.state(a.key) == "started", "a started")
        await first.rm.set_maintenance(True)
        await first.rm.shutdown(TIMEOUT)  # in maintenance: nothing is stopped

    _run(before_restart)
    assert (tmp_path / "a.state").exists() and state.exists()
    (tmp_path / "a.state").unlink()  # gone while the daemon was down
    (tmp_path / "b.state").touch()  # and this one started by hand: not ours, not probed

    second = Node(tmp_path, _config(a, b))

    async def after_restart() -> None:
        assert second.rm.maintenance
        await second.up()
        assert (second.state(a.key), second.state(b.key)) == ("started", "stopped")
        assert second.events == []  # not even a probe ran
        await second.rm.set_maintenance(False)
        await _until((tmp_path / "a.state").exists, "a recovered")
        await _until(lambda: second.state(b.key) == "started", "b found running")
        assert not state.exists()
        second.rm.runner.close()

    _run(after_restart)


def test_an_unreadable_maintenance_file_keeps_the_node_in_maintenance(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "maintenance.json").write_text("{not json")
    node = Node(tmp_path, _config(_group(tmp_path, "a")))
    assert node.rm.maintenance
    node.rm.runner.close()
