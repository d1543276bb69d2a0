"""What counts, and when a change counts: targets, groups, multiplier and dampening. Pure."""

from __future__ import annotations

from hacore.config.model import Auth, AuthKey, AuthMethod, ClusterConfig, PingGroup

from hacore_ping.score import Dampener, Target, addresses, reached, targets

CONFIG = ClusterConfig(
    nodes=("pc1", "pc2"),
    local_node="pc1",
    links=(),
    auth=Auth(1, (AuthKey(1, AuthMethod.SHA256, b"secret"),)),
    ping_nodes=("198.51.100.11", "198.51.100.12"),
    ping_groups=(PingGroup("routers", ("198.51.100.21", "198.51.100.12")),),
)


def test_each_ping_node_and_each_ping_group_is_one_target() -> None:
    assert targets(CONFIG) == (
        Target("198.51.100.11", ("198.51.100.11",)),
        Target("198.51.100.12", ("198.51.100.12",)),
        Target("routers", ("198.51.100.21", "198.51.100.12")),
    )


def test_an_address_in_a_node_and_a_group_is_pinged_once() -> None:
    assert addresses(targets(CONFIG)) == ("198.51.100.11", "198.51.100.12", "198.51.100.21")


def test_a_group_is_reached_when_any_member_answers() -> None:
    assert [t.name for t in reached(targets(CONFIG), {"198.51.100.21"})] == ["routers"]
    assert [t.name for t in reached(targets(CONFIG), {"198.51.100.12"})] == [
        "198.51.100.12",
        "routers",
    ]
    assert reached(targets(CONFIG), set()) == ()


def test_the_first_measurement_counts_at_once() -> None:
    dampener = Dampener(5.0)
    assert dampener.value is None
    assert dampener.update(2, now=100.0) == 2


def test_a_change_counts_once_it_has_held_for_dampen() -> None:
    dampener = Dampener(5.0)
    dampener.update(2, now=0.0)

    assert dampener.update(1, now=10.0) == 2
    assert dampener.pending == 1
    assert dampener.update(1, now=14.9) == 2
    assert dampener.update(1, now=15.0) == 1
    assert dampener.pending is None


def test_a_flap_shorter_than_dampen_changes_nothing() -> None:
    dampener = Dampener(5.0)
    dampener.update(2, now=0.0)

    assert dampener.update(1, now=2.0) == 2
    assert dampener.update(2, now=4.0) == 2  # back: the wait is over
    assert dampener.update(1, now=6.0) == 2  # a new wait starts here...
    assert dampener.update(1, now=10.0) == 2  # ...so 8 s after the first drop is not enough
    assert dampener.update(1, now=11.0) == 1


def test_a_third_value_starts_the_wait_over() -> None:
    dampener = Dampener(5.0)
    dampener.update(2, now=0.0)

    dampener.update(1, now=1.0)
    assert dampener.update(0, now=4.0) == 2
    assert dampener.update(0, now=8.0) == 2
    assert dampener.update(0, now=9.0) == 0


def test_dampen_zero_follows_every_measurement() -> None:
    dampener = Dampener(0.0)
    assert [dampener.update(v, now=float(t)) for t, v in enumerate([2, 1, 2, 0])] == [2, 1, 2, 0]
