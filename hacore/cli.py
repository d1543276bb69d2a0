"""``hactl``: run a node, ask it how the cluster is, check and convert configurations.

Exit status: 0 success, 1 failure, 2 bad configuration or usage, 3 daemon not running (as LSB
``status`` and ``heartbeat -s``). Query commands answer as pcs does: 0 yes, 2 no, 1 error (3 still
means no daemon to ask). Bad input is reported as ``file:line: message`` lines, never as a
traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
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
# pcs-style answers of the query commands (resource locate, node status): 0 yes, 2 no, 1 error.
EXIT_NO = 2
EXIT_ERROR = 1
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
    # A SIGHUP (systemctl reload) before the loop installs its handler must not kill us; a
    # caught signal, unlike an ignored one, is reset to default in the agents we exec.
    signal.signal(signal.SIGHUP, lambda _sig, _frame: None)
    loaded = _load(source, node)
    paths = _paths(source, socket, state_dir)
    try:
        # Agents and plugins are found and checked before anything starts.
        daemon = Daemon(loaded.config, paths, node_name=node)
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def config_check(source: Path | None, node: str | None, as_json: bool) -> None:
    """Validate ha.cf/authkeys/haresources or a cluster.toml; print every problem.

    Exit status 0 when it can run (warnings allowed), 2 when it has errors.
    """
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
    ok = not any(p.severity is Severity.ERROR for p in problems)
    if as_json:
        found = [_problem_json(p) for p in problems]
        click.echo(json.dumps({"ok": ok, "problems": found}, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem), err=True)
    if not ok:
        sys.exit(EXIT_CONFIG)
    if not as_json:
        click.echo("configuration OK")


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.location.file,
        "line": problem.location.line or None,
        "severity": problem.severity.value,
        "message": problem.message,
        "text": str(problem),
    }


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


# A reload may stop and start changed groups before it answers.
RELOAD_TIMEOUT_S = 300.0


@config.command("reload")
@config_option
@socket_option
def config_reload(source: Path | None, socket: Path | None) -> None:
    """Make the running daemon read its configuration again (as SIGHUP does).

    The new configuration is checked first; when it is refused (exit 2) the old one keeps
    running. Otherwise what changed is applied without moving the groups that did not change:
    timers, keys, plugins' settings, monitors, added, removed and changed groups. Changes to
    the nodes, the local node name or the links need a restart.
    """
    path = _paths(source, socket).socket
    try:
        reply = request(path, "reload", timeout=RELOAD_TIMEOUT_S)
    except ControlError as err:
        _fail([f"hactl config reload: {err}"], EXIT_NOT_RUNNING)
    for line in reply.get("warnings") or []:
        click.echo(str(line), err=True)
    if reply.get("refused"):
        lines = [str(line) for line in reply.get("problems", [])]
        _fail(
            [*lines, "hactl config reload: refused; the old configuration keeps running"],
            EXIT_CONFIG,
        )
    if not reply.get("ok"):
        _fail([f"hactl config reload: {reply.get('error')}"], 1)
    applied = reply.get("applied") or []
    for line in applied:
        click.echo(f"applied {line}")
    if not applied:
        click.echo("nothing changed")
    errors = reply.get("errors") or []
    if errors:
        _fail([f"hactl config reload: {e}" for e in errors], 1)


@main.command()
@click.argument("mode", type=click.Choice(["on", "off"]))
@config_option
@socket_option
def maintenance(mode: str, source: Path | None, socket: Path | None) -> None:
    """Maintenance mode (Pacemaker's maintenance-mode) for this node's resources.

    on: nothing is started, stopped or monitored here; what runs keeps running, and nothing
    fails over to or away from this node because of its resources (membership carries on). It
    persists across daemon restarts. off: the resources are probed again and managed as usual.
    """
    path = _paths(source, socket).socket
    try:
        reply = request(path, "maintenance", timeout=RELOAD_TIMEOUT_S, on=mode == "on")
    except ControlError as err:
        _fail([f"hactl maintenance: {err}"], EXIT_NOT_RUNNING)
    if not reply.get("ok"):
        _fail([f"hactl maintenance: {reply.get('error')}"], 1)
    click.echo(f"maintenance mode {mode}")


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
    if reply.get("warning"):
        click.echo(f"hactl {cmd}: warning: {reply['warning']}", err=True)
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def resource_status(source: Path | None, socket: Path | None, as_json: bool) -> None:
    """What this node holds: none, local, foreign, all or transition (cl_status rscstatus)."""
    rscstatus = _command(source, socket, "status")["status"]["rscstatus"]
    if as_json:
        click.echo(json.dumps({"rscstatus": rscstatus}, indent=2))
        return
    click.echo(rscstatus)


@resource.command("locate")
@click.argument("group")
@config_option
@socket_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def resource_locate(group: str, source: Path | None, socket: Path | None, as_json: bool) -> None:
    """Print the node(s) holding GROUP: its key (as in `resource list`), or the instance or
    agent name of one of its resources when only one group has it.

    Exit status 0 when a node holds it, 2 when none does, 1 when there is no such group.
    """
    groups = _command(source, socket, "status")["status"]["groups"]
    found = [g for g in groups if g["key"] == group] or [
        g for g in groups if any(group in (r["name"], r["agent"]) for r in g["resources"])
    ]
    if len(found) != 1:
        why = "no group" if not found else "more than one group has a resource"
        _fail([f"hactl resource locate: {why} '{group}' (see hactl resource list)"], EXIT_ERROR)
    (entry,) = found
    holders: list[str] = entry["holders"]
    if as_json:
        click.echo(json.dumps({"group": entry["key"], "holders": holders}, indent=2))
    elif holders:
        click.echo("\n".join(holders))
    else:
        click.echo(f"{entry['key']} is held nowhere", err=True)
    sys.exit(0 if holders else EXIT_NO)


@resource.command("cleanup")
@click.argument("group")
@config_option
@socket_option
def resource_cleanup(group: str, source: Path | None, socket: Path | None) -> None:
    """Forget a group's failures on this node so it may run here again."""
    _command(source, socket, "cleanup", group=group)


@main.group()
def node() -> None:
    """Ask about the cluster's nodes as this one sees them."""


def _nodes(status: dict[str, Any]) -> list[dict[str, Any]]:
    local = status["local"]
    own = {"name": local["name"], "state": local["state"], "local": True, "last_heard_ms": None}
    peers = [
        {
            "name": n["name"],
            "state": n["state"],
            "local": False,
            "last_heard_ms": n["last_heard_ms"],
        }
        for n in status["nodes"]
    ]
    return [own, *peers]


@node.command("list")
@config_option
@socket_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def node_list(source: Path | None, socket: Path | None, as_json: bool) -> None:
    """Every node and its state: init, up, active or dead (cl_status listnodes)."""
    nodes = _nodes(_command(source, socket, "status")["status"])
    if as_json:
        click.echo(json.dumps(nodes, indent=2))
        return
    for n in nodes:
        click.echo(f"{n['name']:<16} {n['state']}{'  (local)' if n['local'] else ''}")


@node.command("status")
@click.argument("name")
@config_option
@socket_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def node_status(name: str, source: Path | None, socket: Path | None, as_json: bool) -> None:
    """Print NAME's state (cl_status nodestatus).

    Exit status 0 when it is up or active, 2 when it is dead or still in init, 1 when the
    cluster has no such node.
    """
    nodes = {n["name"]: n for n in _nodes(_command(source, socket, "status")["status"])}
    entry = nodes.get(name.lower())  # node names are lower case, as in Heartbeat
    if entry is None:
        known = ", ".join(nodes)
        _fail([f"hactl node status: no node '{name}' (the nodes are {known})"], EXIT_ERROR)
    if as_json:
        click.echo(json.dumps(entry, indent=2))
    else:
        click.echo(entry["state"])
    sys.exit(0 if entry["state"] in ("up", "active") else EXIT_NO)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    bash: eval "$(hactl completion bash)" in ~/.bashrc; zsh: the same in ~/.zshrc;
    fish: hactl completion fish > ~/.config/fish/completions/hactl.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the Choice admits only the shells click knows
    click.echo(cls(main, {}, "hactl", "_HACTL_COMPLETE").source())


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
