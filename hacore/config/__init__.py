"""Reading and writing the cluster configuration.

Two sources give the same ``ClusterConfig``: a Heartbeat directory (``/etc/ha.d`` with ha.cf,
authkeys and, optionally, haresources, read exactly as Heartbeat 3.0.6 reads them) and
hacore's own ``cluster.toml``. Every problem found is reported at once, each as
``file:line: message``; ``load`` raises ``ConfigError`` if any of them is an error, ``check``
just returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hacore.config.authkeys import read_authkeys
from hacore.config.errors import ConfigError, Problem, Severity
from hacore.config.files import MISSING_HINT
from hacore.config.hacf import read_hacf
from hacore.config.haresources import check_groups, read_haresources
from hacore.config.model import ClusterConfig, Location
from hacore.config.nodeinfo import local_node
from hacore.config.toml import read_toml, to_toml

__all__ = [
    "DEFAULT_DIR",
    "ConfigError",
    "Loaded",
    "Problem",
    "Severity",
    "check",
    "load",
    "to_toml",
]

DEFAULT_DIR = Path("/etc/ha.d")
TOML_NAME = "cluster.toml"


@dataclass(frozen=True)
class Loaded:
    """A configuration that has no errors, and the warnings found while reading it."""

    config: ClusterConfig
    warnings: tuple[Problem, ...]


def load(source: Path, *, node_name: str | None = None) -> Loaded:
    """Read the configuration at ``source``: a Heartbeat directory such as /etc/ha.d (or one
    that holds only a cluster.toml), or a .toml file. ``node_name`` overrides the local node
    name (else ``nodeinfo`` in the directory, else the host name).

    Raises ConfigError with every problem, warnings included, when any is an error.
    """
    config, problems = _read(source, node_name)
    if config is None or any(p.severity is Severity.ERROR for p in problems):
        raise ConfigError(problems)
    return Loaded(config, tuple(problems))


def check(source: Path, *, node_name: str | None = None) -> tuple[Problem, ...]:
    """Every problem ``load`` would find, errors and warnings, without raising."""
    return tuple(_read(source, node_name)[1])


def _read(source: Path, node_name: str | None) -> tuple[ClusterConfig | None, list[Problem]]:
    if source.is_dir():
        if not (source / "ha.cf").exists() and (source / TOML_NAME).exists():
            return read_toml(source / TOML_NAME, node_name)
        return _read_heartbeat(source, node_name)
    if source.suffix == ".toml":
        return read_toml(source, node_name)
    where = Location(str(source))
    if source.exists():
        message = "is neither a directory nor a .toml file (give the directory that holds ha.cf)"
        return None, [Problem(where, message)]
    return None, [Problem(where, f"not found ({MISSING_HINT})")]


def _read_heartbeat(
    directory: Path, node_name: str | None
) -> tuple[ClusterConfig | None, list[Problem]]:
    hacf_path = directory / "ha.cf"
    hacf = read_hacf(hacf_path)
    problems = list(hacf.problems)
    local, local_problems = local_node(node_name, directory)
    problems.extend(local_problems)
    if local is not None and hacf.nodes and local not in hacf.nodes:
        problems.append(
            Problem(
                Location(str(hacf_path)),
                f"local node '{local}' is not in the node list (add 'node {local}' or write "
                f"its name to {directory / 'nodeinfo'})",
            )
        )
    auth, auth_problems = read_authkeys(directory / "authkeys")
    problems.extend(auth_problems)
    groups, group_problems = read_haresources(directory / "haresources")
    problems.extend(group_problems)
    if hacf.nodes:
        problems.extend(check_groups(groups, hacf.nodes, "haresources"))
    if not hacf.readable or local is None or auth is None:
        return None, problems
    if any(p.severity is Severity.ERROR for p in problems):
        return None, problems
    config = ClusterConfig(
        nodes=tuple(hacf.nodes),
        local_node=local,
        links=tuple(hacf.links),
        auth=auth,
        timers=hacf.timers,
        udpport=hacf.udpport,
        auto_failback=hacf.auto_failback,
        ping_nodes=tuple(hacf.ping_nodes),
        ping_groups=tuple(hacf.ping_groups),
        groups=groups,
        logfile=hacf.logfile,
        debugfile=hacf.debugfile,
        logfacility=hacf.logfacility,
        debug=hacf.debug,
        realtime=hacf.realtime,
        hbgenmethod=hacf.hbgenmethod,
        cluster=hacf.cluster,
        metrics_address=hacf.metrics_address,
        control_group=hacf.control_group,
        ignored=tuple(hacf.ignored),
        source=directory,
    )
    return config, problems
