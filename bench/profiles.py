"""The timing profiles the systems are compared at, and what each system is set to for each.

The same profile means the same failure detector for everybody: hacore and Heartbeat get the
same keepalive and deadtime (Heartbeat's nearest accepted settings at the fastest profile), and
keepalived the advert interval whose master-down interval is closest to that deadtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.keepalived import VrrpTimers, master_down_s

__all__ = ["PROFILES", "SYSTEMS", "HbTimers", "Profile", "profile"]

SYSTEMS = ("hacore", "heartbeat", "keepalived")
# keepalived's backup priority: its master-down interval (its deadtime) depends on it.
BACKUP_PRIORITY = 100
MASTER_PRIORITY = 150


@dataclass(frozen=True)
class HbTimers:
    """Heartbeat-style timers (hacore reads the same ha.cf directives)."""

    keepalive_ms: int
    deadtime_ms: int

    @property
    def initdead_ms(self) -> int:
        # The smallest value Heartbeat accepts. Heartbeat times a peer that has just restarted
        # against initdead, not deadtime: a larger initdead would slow every failover that
        # follows a failback (measured: +1.7 s with initdead 2 s at deadtime 300 ms).
        return self.deadtime_ms

    def describe(self) -> str:
        return f"keepalive {_ms(self.keepalive_ms)} / deadtime {_ms(self.deadtime_ms)}"


def _ms(value: int) -> str:
    return f"{value // 1000} s" if value >= 1000 and value % 1000 == 0 else f"{value} ms"


@dataclass(frozen=True)
class Profile:
    name: str
    hacore: HbTimers
    heartbeat: HbTimers
    keepalived: VrrpTimers

    def deadtime_s(self, system: str) -> float:
        """The configured time after which the peer is declared dead: the failover's floor."""
        if system == "hacore":
            return self.hacore.deadtime_ms / 1000
        if system == "heartbeat":
            return self.heartbeat.deadtime_ms / 1000
        return master_down_s(self.keepalived, BACKUP_PRIORITY)

    def keepalive_s(self, system: str) -> float:
        if system == "hacore":
            return self.hacore.keepalive_ms / 1000
        if system == "heartbeat":
            return self.heartbeat.keepalive_ms / 1000
        return self.keepalived.advert_s

    def settings(self, system: str) -> str:
        if system == "hacore":
            return self.hacore.describe()
        if system == "heartbeat":
            return self.heartbeat.describe()
        down = master_down_s(self.keepalived, BACKUP_PRIORITY)
        return f"{self.keepalived.describe()} (master down {down:.3g} s)"


PROFILES = {
    "classic": Profile(
        "classic",
        hacore=HbTimers(1000, 10000),
        heartbeat=HbTimers(1000, 10000),
        keepalived=VrrpTimers(2, 1.0),
    ),
    "fast": Profile(
        "fast",
        hacore=HbTimers(100, 300),
        heartbeat=HbTimers(100, 300),
        keepalived=VrrpTimers(3, 0.1),
    ),
    "fastest": Profile(
        "fastest",
        hacore=HbTimers(10, 30),
        # Heartbeat floods "event loop late" warnings below 50 ms; 50 / 200 is its nearest
        # clean setting (deadtime must exceed twice keepalive).
        heartbeat=HbTimers(50, 200),
        keepalived=VrrpTimers(3, 0.01),
    ),
}


def profile(name: str) -> Profile:
    return PROFILES[name]
