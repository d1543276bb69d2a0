"""An in-memory network of membership state machines under a fake clock.

Datagrams are delivered after a per-datagram latency, may be dropped or reordered, and every
``Send`` goes out on every link of the sender, as the daemon does. Wall clock = fake clock +
a fixed epoch, so timestamps look real.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from hacore.config.model import Timers
from hacore.membership.detector import Membership
from hacore.membership.events import Event, Send
from hacore.membership.wire import Message

EPOCH = 1_764_000_000.0


@dataclass
class SimNode:
    name: str
    membership: Membership
    alive: bool = True
    events: list[Event] = field(default_factory=list)


@dataclass
class Network:
    names: list[str]
    timers: Timers
    links: tuple[str, ...] = ("eth0",)
    loss: float = 0.0
    latency: tuple[float, float] = (0.0002, 0.0002)
    seed: int = 1
    now: float = 0.0
    nodes: dict[str, SimNode] = field(default_factory=dict)
    # Links that currently drop everything between two nodes (partition), both directions.
    cut: set[frozenset[str]] = field(default_factory=set)
    captured: list[tuple[str, Message]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._queue: list[tuple[float, int, str, str, Message]] = []
        self._order = itertools.count()
        self._generations = dict.fromkeys(self.names, 100)
        for name in self.names:
            self.start(name)

    def wall(self) -> float:
        return EPOCH + self.now

    def start(self, name: str, *, generation: int | None = None) -> SimNode:
        gen = generation if generation is not None else self._generations[name] + 1
        self._generations[name] = gen
        node = SimNode(
            name,
            Membership(
                local=name,
                nodes=self.names,
                links=self.links,
                timers=self.timers,
                generation=gen,
                uuid=name.encode().ljust(16, b"\0")[:16],
                now=self.now,
            ),
        )
        self.nodes[name] = node
        return node

    def kill(self, name: str) -> None:
        self.nodes[name].alive = False

    def _emit(self, node: SimNode, events: list[Event]) -> None:
        node.events += events
        for event in events:
            if isinstance(event, Send):
                self.captured.append((node.name, event.message))
                self.broadcast(node.name, event.message)

    def broadcast(self, src: str, message: Message) -> None:
        for dst in self.names:
            if dst == src or frozenset((src, dst)) in self.cut:
                continue
            for link in self.links:
                if self.rng.random() < self.loss:
                    continue
                delay = self.rng.uniform(*self.latency)
                heapq.heappush(
                    self._queue, (self.now + delay, next(self._order), dst, link, message)
                )

    def inject(self, dst: str, message: Message, link: str = "eth0") -> list[Event]:
        node = self.nodes[dst]
        events = node.membership.receive(message, link, self.now, self.wall())
        self._emit(node, events)
        return events

    def run(self, duration: float, until: Callable[[], bool] | None = None) -> None:
        """Advance the clock by ``duration`` seconds, or until ``until()`` holds."""
        end = self.now + duration
        for _ in range(10_000_000):  # bounded: a stuck timer fails the test instead of hanging
            if self.now >= end:
                return
            if until is not None and until():
                return
            wake = min(
                (n.membership.next_wakeup() for n in self.nodes.values() if n.alive), default=end
            )
            arrival = self._queue[0][0] if self._queue else end
            self.now = min(wake, arrival, end)
            while self._queue and self._queue[0][0] <= self.now:
                _, _, dst, link, message = heapq.heappop(self._queue)
                node = self.nodes[dst]
                if node.alive:
                    self._emit(node, node.membership.receive(message, link, self.now, self.wall()))
            for node in list(self.nodes.values()):
                if node.alive and node.membership.next_wakeup() <= self.now:
                    self._emit(node, node.membership.tick(self.now, self.wall()))
        raise RuntimeError("simulation did not advance")
