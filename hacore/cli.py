"""``hactl``: run a node, ask it how the cluster is, check and convert configurations.

Exit status: 0 success, 1 failure, 2 bad configuration or usage, 3 daemon not running (as LSB
``status`` and ``heartbeat -s``). Bad input is reported as ``file:line: message`` lines, never as
a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from hacore import __version__
from hacore.config import ConfigError, Loaded, Problem, Severity, check, load, to_toml
from hacore.config.model import Location
from hacore.control import ControlError, request
from hacore.paths import DEFAULT_CONFIG_DIR, RuntimePaths, runtime_paths
from hacore.statusview import format_status

EXIT_CONFIG = 2
EXIT_NOT_RUNNING = 3
DEFAULT_TOML = Path("/etc/hacore/cluster.toml")


def _default_source() -> Path:
    env = os.environ.get("HACORE_CONFIG_DIR")
    if env:
        return Path(env)
    if not (DEFAULT_CONFIG_DIR / "ha.cf").exists() and DEFAULT_TOML.exists():
        return DEFAULT_TOML
    return DEFAULT_CONFIG_DIR


config_option = click.option(
    "--config-dir",
    "-c",
    "source",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory holding ha.cf, authkeys and haresources, or a cluster.toml file "
    "[default: /etc/ha.d, else /etc/hacore/cluster.toml].",
)
node_option = click.option(
    "--node", default=None, help="This node's name [default: nodeinfo file, else uname -n]."
)
socket_option = click.option(
    "--socket",
    type=click.Path(path_type=Path),
    default=None,
    help="Control socket [default: follows from the configuration].",
)


def _fail(lines: list[str], code: int) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def _load(source: Path | None, node: str | None) -> Loaded:
    try:
        loaded = load(source or _default_source(), node_name=node)
    except ConfigError as err:
        _fail([str(p) for p in err.problems], EXIT_CONFIG)
    for warning in loaded.warnings:
        click.echo(str(warning), err=True)
    return loaded


def _paths(source: Path | None, socket: Path | None, state_dir: Path | None = None) -> RuntimePaths:
    return runtime_paths(source or _default_source(), state_dir=state_dir, socket=socket)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hactl")
def main() -> None:
    """hacore: high-availability cluster manager (reads Heartbeat's /etc/ha.d unchanged)."""


@main.command()
@config_option
@node_option
@socket_option
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the generation number and node UUID live [default: follows from the "
    "configuration].",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def run(
    source: Path | None,
    node: str | None,
    socket: Path | None,
    state_dir: Path | None,
    verbose: bool,
) -> None:
    """Run this node in the foreground until SIGTERM (what systemd expects)."""
    from hacore import logs
    from hacore.daemon import Daemon, small_thread_stacks
    from hacore.metrics import MetricsError
    from hacore.transport import LinkError

    small_thread_stacks()
    loaded = _load(source, node)
    paths = _paths(source, socket, state_dir)
    try:
        # Agents and plugins are found and checked before anything starts.
        daemon = Daemon(loaded.config, paths)
    except ConfigError as err:
        _fail([str(p) for p in err.problems], EXIT_CONFIG)
    listener = logs.setup(loaded.config, verbose=verbose)
    try:
        asyncio.run(daemon.run())
    except (LinkError, MetricsError) as err:
        listener.stop()
        _fail([f"{loaded.config.source}: {err}"], EXIT_CONFIG)
    except PermissionError as err:
        listener.stop()
        _fail([f"hactl run: {err.strerror}: {err.filename} (run as root)"], 1)
    except Exception as err:
        # A bug, not bad input: the details go to the log, the person gets one line.
        logging.getLogger("hacore").exception("daemon failed")
        listener.stop()
        _fail([f"hactl run: internal error: {err!r} (details in the log)"], 1)
    listener.stop()


@main.command()
@config_option
@socket_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--watch", is_flag=True, help="Refresh until interrupted, like crm_mon.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
@click.option("--count", type=click.IntRange(1), default=None, hidden=True)
def status(
    *,
    source: Path | None,
    socket: Path | None,
    as_json: bool,
    watch: bool,
    interval: float,
    count: int | None,
) -> None:
    """Show the nodes, their links, when each was last heard, and the groups."""
    path = _paths(source, socket).socket
    shown = 0
    while True:
        try:
            reply = request(path, "status")
        except ControlError as err:
            if not watch:
                _fail([f"hactl status: {err}"], EXIT_NOT_RUNNING)
            reply = {"ok": False, "error": str(err)}
        if watch:
            click.clear()
            click.echo(time.strftime("%Y-%m-%d %H:%M:%S") + f"  (every {interval:g} s, Ctrl-C)")
        if not reply.get("ok"):
            if not watch:
                _fail([f"hactl status: {reply.get('error')}"], 1)
            click.echo(f"hactl status: {reply.get('error')}")  # it may come back: keep going
        elif as_json:
            click.echo(json.dumps(reply["status"], indent=2))
        else:
            click.echo(format_status(reply["status"]))
        shown += 1
        if not watch or (count is not None and shown >= count):
            return
        time.sleep(interval)


@main.group()
def config() -> None:
    """Check or convert a configuration."""


@config.command("check")
@config_option
@node_option
def config_check(source: Path | None, node: str | None) -> None:
    """Validate ha.cf/authkeys/haresources or a cluster.toml; print every problem."""
    from hacore.plugins import PluginError, plugin_manager
    from hacore.resources.binding import bind

    where = source or _default_source()
    problems = check(where, node_name=node)
    if not any(p.severity is Severity.ERROR for p in problems):
        # Readable: now make sure every agent it names is installed and takes its parameters,
        # and let the plugins have their say.
        config = load(where, node_name=node).config
        problems += bind(config)[1]
        try:
            for found in plugin_manager().hook.hacore_config_validate(config=config):
                problems += tuple(Problem(Location(str(where)), text) for text in found)
        except PluginError as err:
            problems += (Problem(Location(str(where)), str(err)),)
    for problem in problems:
        click.echo(str(problem), err=True)
    if any(p.severity is Severity.ERROR for p in problems):
        sys.exit(EXIT_CONFIG)
    click.echo("configuration OK")


@config.command("import")
@click.argument("directory", type=click.Path(path_type=Path))
@node_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the TOML here (mode 600: it holds the keys) instead of standard output.",
)
def config_import(directory: Path, node: str | None, output: Path | None) -> None:
    """Turn a Heartbeat /etc/ha.d into a cluster.toml."""
    _write_private(to_toml(_load(directory, node).config), output, replace=True)


@main.command()
@click.option(
    "--method",
    type=click.Choice(["sha256", "sha1", "md5"]),
    default="sha256",
    show_default=True,
    help="sha1 or md5 if Heartbeat 3.0.6 nodes must read it.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write an authkeys file (mode 600) instead of standard output.",
)
def keygen(method: str, output: Path | None) -> None:
    """Make a new random authkeys file."""
    _write_private(f"auth 1\n1 {method} {secrets.token_hex(32)}\n", output, replace=False)


def _write_private(text: str, output: Path | None, *, replace: bool) -> None:
    """Secrets to standard output, or to a file created mode 600 (never readable by others,
    not even for an instant)."""
    if output is None:
        click.echo(text, nl=False)
        return
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        fd = os.open(output, flags, 0o600)
    except FileExistsError:
        _fail([f"{output}: exists already; not overwriting keys"], 1)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    click.echo(f"wrote {output}", err=True)


@main.command()
@click.option(
    "--keepalive",
    "keepalive_ms",
    type=click.IntRange(10, 5000),
    default=100,
    show_default=True,
    help="Keepalive interval in milliseconds.",
)
@click.option(
    "--deadtime",
    "deadtime_ms",
    type=click.IntRange(50, 60000),
    default=1000,
    show_default=True,
    help="Dead time in milliseconds (more than 2 x keepalive).",
)
def demo(keepalive_ms: int, deadtime_ms: int) -> None:
    """Run a live two-node cluster in network namespaces, cut a node's power, watch."""
    from hacore.demo import main as run

    if deadtime_ms <= 2 * keepalive_ms:
        _fail(["hactl demo: --deadtime must exceed 2 x --keepalive"], EXIT_CONFIG)
    sys.exit(run(click.echo, keepalive_ms=keepalive_ms, deadtime_ms=deadtime_ms))


SCOPE = click.Choice(["all", "local", "foreign", "failback", "none"])
WAIT_TIMEOUT_S = 120.0


def _command(source: Path | None, socket: Path | None, cmd: str, **args: Any) -> dict[str, Any]:
    path = _paths(source, socket).socket
    try:
        reply = request(path, cmd, **args)
    except ControlError as err:
        _fail([f"hactl {cmd}: {err}"], EXIT_NOT_RUNNING)
    if not reply.get("ok"):
        _fail([f"hactl {cmd}: {reply.get('error')}"], 1)
    return reply


def _wait_settled(source: Path | None, socket: Path | None, cmd: str) -> None:
    """Wait until every group has exactly one holder and nothing is in transition."""
    path = _paths(source, socket).socket
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            status = request(path, "status")["status"]
        except (ControlError, KeyError):
            time.sleep(0.05)
            continue
        settled = all(g["holders"] == [g["desired"]] for g in status["groups"] if g["desired"])
        if settled and status["rscstatus"] != "transition":
            return
        time.sleep(0.02)
    _fail([f"hactl {cmd}: the groups did not settle within {WAIT_TIMEOUT_S:g} s"], 1)


@main.command()
@click.argument("scope", type=SCOPE, default="all")
@config_option
@socket_option
@click.option("--wait", is_flag=True, help="Return once the groups have moved.")
def standby(scope: str, source: Path | None, socket: Path | None, wait: bool) -> None:
    """Give this node's groups to the peer, as hb_standby did (failback = foreign).

    local: the groups whose preferred node is this one; foreign: the others; none: cancel
    this node's standby and takeover requests. The request persists across restarts; a standby
    node still takes groups over when no other node can.
    """
    _command(source, socket, "standby", scope=scope)
    if wait:
        _wait_settled(source, socket, "standby")


@main.command()
@click.argument("scope", type=SCOPE, default="all")
@config_option
@socket_option
@click.option("--wait", is_flag=True, help="Return once the groups have moved.")
def takeover(scope: str, source: Path | None, socket: Path | None, wait: bool) -> None:
    """Take groups from the peer to this node, as hb_takeover did (same scopes as standby)."""
    _command(source, socket, "takeover", scope=scope)
    if wait:
        _wait_settled(source, socket, "takeover")


@main.group()
def resource() -> None:
    """List resource groups, show where they run, clear failures."""


@resource.command("list")
@config_option
@socket_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def resource_list(source: Path | None, socket: Path | None, as_json: bool) -> None:
    """Every group: preferred node, holders, local state, failures."""
    groups = _command(source, socket, "status")["status"]["groups"]
    if as_json:
        click.echo(json.dumps(groups, indent=2))
        return
    click.echo(f"{'GROUP':<40} {'PREFERRED':<10} {'HELD BY':<16} {'HERE':<9} FAILURES")
    for g in groups:
        held = ", ".join(g["holders"]) or "-"
        click.echo(
            f"{g['key']:<40} {g['preferred']:<10} {held:<16} {g['local_state']:<9} {g['failcount']}"
        )


@resource.command("status")
@config_option
@socket_option
def resource_status(source: Path | None, socket: Path | None) -> None:
    """What this node holds: none, local, foreign, all or transition (cl_status rscstatus)."""
    click.echo(_command(source, socket, "status")["status"]["rscstatus"])


@resource.command("cleanup")
@click.argument("group")
@config_option
@socket_option
def resource_cleanup(group: str, source: Path | None, socket: Path | None) -> None:
    """Forget a group's failures on this node so it may run here again."""
    _command(source, socket, "cleanup", group=group)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List the installed resource agents and hook plugins."""
    from hacore.plugins import AgentRegistry, PluginError, plugin_manager

    agents = AgentRegistry().available()
    try:
        pm = plugin_manager()
        hooks = sorted(name for name, plugin in pm.list_name_plugin() if plugin is not None)
    except PluginError as err:
        _fail([f"hactl plugins: {err}"], 1)
    if as_json:
        click.echo(json.dumps({"agents": agents, "plugins": hooks}, indent=2))
        return
    click.echo("resource agents (entry points 'hacore.agents'):")
    for name, origin in agents.items():
        click.echo(f"  {name:<16} {origin}")
    click.echo("hook plugins (entry points 'hacore.plugins'):")
    for name in hooks:
        click.echo(f"  {name}")
    if not hooks:
        click.echo("  (none)")


@main.command("install-unit")
@config_option
@click.option(
    "--dest",
    type=click.Path(path_type=Path),
    default=Path("/etc/systemd/system"),
    show_default=True,
    help="Where to write hacore.service.",
)
def install_unit(source: Path | None, dest: Path) -> None:
    """Write the systemd unit (Type=notify, watchdog) for this hactl and configuration.

    Then: systemctl daemon-reload && systemctl enable --now hacore
    """
    from hacore.systemd import UNIT_FILE

    hactl = Path(sys.argv[0]).resolve()
    args = f" --config-dir {source.resolve()}" if source is not None else ""
    text = UNIT_FILE.read_text().replace("@HACTL@", str(hactl)).replace("@ARGS@", args)
    target = dest / "hacore.service"
    try:
        target.write_text(text)
    except OSError as err:
        _fail([f"hactl install-unit: {target}: {err.strerror}"], 1)
    click.echo(f"wrote {target}; now: systemctl daemon-reload && systemctl enable --now hacore")
