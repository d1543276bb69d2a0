"""Local security: who may talk to the daemon, what the files it writes let others do, and that
no configured value ever reaches a shell.

Threat model: an unprivileged local user (``nobody``, or any account not in the control group)
must not read the cluster's state, move its groups or learn its keys; an agent parameter is
data, even when it looks like shell. Real users are used, not mocked credentials: hactl runs
under ``setpriv`` with another uid, and the control-group test creates a throwaway user and
group (``hacoretest*``) that are removed whatever happens.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import grp
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hacore.agent import Instance
from hacore.bridge import lsb_agent, ocf_agent
from hacore.config import ConfigError, Severity, load, to_toml
from hacore.lab.netns import Lab
from hacore.lab.nodes import HacoreNode, write_cluster

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
START_TIMEOUT = 20.0
HACTL_TIMEOUT = 60.0


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may traverse (pytest's own tmp tree is root's alone), so what
    refuses a user below it is hacore's own protection, not the tree around it."""
    path = Path(tempfile.mkdtemp(prefix="hacore-sec-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as_user(
    argv: list[str], *, uid: int | str = NOBODY, gid: int | str = NOBODY, init_groups: bool = False
) -> subprocess.CompletedProcess[str]:
    """``argv`` with another real uid/gid: no supplementary groups, or the user's own."""
    groups = ["--init-groups"] if init_groups else ["--clear-groups"]
    command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", *groups, *argv]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=HACTL_TIMEOUT,
        cwd="/",
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
    )


def _hactl(*args: str) -> list[str]:
    return [sys.executable, "-m", "hacore", *args]


def _refused_in_one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The refusal as a person reads it: a non-zero exit, one line, no traceback."""
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "permission denied" in lines[0]
    return lines[0]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _node(lab: Lab, base: Path, extra: tuple[str, ...] = ()) -> HacoreNode:
    """A one-node cluster: enough for a daemon with a control socket and its state files."""
    host = lab.add_host("pc1")
    dirs = write_cluster(base, ["pc1"], extra=extra)
    for directory in (base, *dirs.values()):
        directory.chmod(0o755)
    return HacoreNode(host, dirs["pc1"])


def _wait_up(node: HacoreNode) -> dict[str, object]:
    return node.wait_status(lambda s: s["local"]["state"] == "active", START_TIMEOUT, "active")


# -- the control socket ----------------------------------------------------------------------


@pytest.mark.netns
def test_an_unprivileged_user_is_refused_with_one_line_and_no_traceback(
    lab: Lab, open_dir: Path, tmp_path: Path
) -> None:
    node = _node(lab, open_dir / "cluster").start()
    _wait_up(node)
    state = node.socket.parent
    assert (node.socket.stat().st_uid, _mode(node.socket)) == (0, 0o600)
    assert _mode(state) == 0o700

    # Through hacore's own files: the state directory stops them.
    done = _as_user(_hactl("status", "--json", "--config-dir", str(node.config_dir)))
    line = _refused_in_one_line(done)
    assert str(node.socket) in line and "run as root" in line

    # A configuration directory the user cannot even look into: still one line.
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    done = _as_user(_hactl("status", "--config-dir", str(hidden)))
    _refused_in_one_line(done)

    # A socket left open by mistake (an admin's chmod): the daemon checks the peer's uid itself.
    state.chmod(0o755)
    node.socket.chmod(0o666)
    try:
        done = _as_user(_hactl("status", "--json", "--config-dir", str(node.config_dir)))
        assert "run as root" in _refused_in_one_line(done)
        done = _as_user(_hactl("standby", "--config-dir", str(node.config_dir)))
        _refused_in_one_line(done)
    finally:
        node.socket.chmod(0o600)
        state.chmod(0o700)
    # Nothing moved, nothing crashed: root is still served.
    status = node.status()
    assert status is not None and status["local"]["standby"] == "none"
    assert node.running() and "Traceback" not in node.log()


@contextlib.contextmanager
def _throwaway_account(group: str | None) -> Iterator[str]:
    """A system user ``hacoretest<hex>`` (with ``group`` as a supplementary group), removed
    on the way out even when the test fails."""
    name = f"hacoretest{secrets.token_hex(3)}"
    extra = ["--groups", group] if group else []
    command = ["useradd", "--system", "--no-create-home", "--no-user-group"]
    subprocess.run([*command, "--shell", "/usr/sbin/nologin", *extra, name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@contextlib.contextmanager
def _throwaway_group() -> Iterator[str]:
    name = f"hacoretest{secrets.token_hex(3)}"
    subprocess.run(["groupadd", "--system", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["groupdel", name], check=False, capture_output=True)


@pytest.mark.netns
def test_members_of_the_control_group_are_served_and_others_are_not(
    lab: Lab, open_dir: Path
) -> None:
    with (
        _throwaway_group() as group,
        _throwaway_account(group) as member,
        _throwaway_account(None) as outsider,
    ):
        gid = grp.getgrnam(group).gr_gid
        node = _node(lab, open_dir / "cluster", extra=(f"control_group {group}",)).start()
        _wait_up(node)
        sock, state = node.socket.stat(), node.socket.parent.stat()
        assert (sock.st_uid, sock.st_gid, stat.S_IMODE(sock.st_mode)) == (0, gid, 0o660)
        # Members may pass through the state directory to the socket, not list it.
        assert (state.st_gid, stat.S_IMODE(state.st_mode)) == (gid, 0o710)
        for private in ("hb_generation", "hb_uuid"):
            assert _mode(node.socket.parent / private) == 0o600

        # The member holds the group as a supplementary group: SO_PEERGROUPS must see it.
        done = _as_user(
            _hactl("status", "--json", "--config-dir", str(node.config_dir)),
            uid=member,
            gid="users",
            init_groups=True,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["local"]["name"] == "pc1"

        for user in (outsider, NOBODY):
            done = _as_user(
                _hactl("status", "--config-dir", str(node.config_dir)),
                uid=user,
                gid="users",
                init_groups=user == outsider,
            )
            _refused_in_one_line(done)
        node.stop()
    assert group not in {g.gr_name for g in grp.getgrall()}


def test_the_control_group_is_read_from_ha_cf_and_from_cluster_toml(tmp_path: Path) -> None:
    ha = tmp_path / "ha"
    write_cluster(ha, ["pc1", "pc2"], extra=["control_group root"])
    assert load(ha / "pc1").config.control_group == "root"

    toml = tmp_path / "cluster.toml"
    fd = os.open(toml, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(
            '[cluster]\nnodes = ["pc1"]\nlocal_node = "pc1"\nauto_failback = "on"\n'
            '[[link]]\nkind = "bcast"\ninterface = "eth0"\n'
            '[auth]\nactive = 1\n[[auth.key]]\nindex = 1\nmethod = "sha256"\nsecret = "x"\n'
            '[control]\ngroup = "root"\n'
        )
    assert load(toml).config.control_group == "root"
    # And `hactl config import` carries it over.
    assert '[control]\ngroup = "root"' in to_toml(load(ha / "pc1").config)


def test_a_control_group_that_does_not_exist_is_one_error_line(tmp_path: Path) -> None:
    dirs = write_cluster(tmp_path, ["pc1", "pc2"], extra=["control_group hacoretestnosuch"])
    ha_cf = dirs["pc1"] / "ha.cf"
    line = ha_cf.read_text().splitlines().index("control_group hacoretestnosuch") + 1
    with pytest.raises(ConfigError) as err:
        load(dirs["pc1"])
    assert [str(p) for p in err.value.problems if p.severity is Severity.ERROR] == [
        f"{ha_cf}:{line}: control_group: no group 'hacoretestnosuch' on this machine "
        "(create it with 'groupadd hacoretestnosuch')"
    ]


# -- files and their modes -------------------------------------------------------------------


@pytest.mark.netns
def test_state_files_are_private_whatever_the_umask(lab: Lab, open_dir: Path) -> None:
    node = _node(lab, open_dir / "cluster")
    old = os.umask(0)  # the daemon inherits it: its modes must not rely on a sane umask
    try:
        node.start()
    finally:
        os.umask(old)
    _wait_up(node)
    moved = node.standby()
    assert moved.returncode == 0, moved.stderr
    state = node.socket.parent
    assert (state / "moves.json").exists()

    assert _mode(state) == 0o700
    assert _mode(state / "hb_generation") == 0o600
    assert _mode(state / "hb_uuid") == 0o600
    assert _mode(node.socket) == 0o600
    # Nothing the daemon created may be written by others: moves.json decides placement.
    for path in state.rglob("*"):
        assert not _mode(path) & 0o022, f"{path} is {_mode(path):04o}"


def test_keygen_and_config_import_write_mode_600_whatever_the_umask(tmp_path: Path) -> None:
    keys = tmp_path / "authkeys"
    done = subprocess.run(
        _hactl("keygen", "-o", str(keys)), capture_output=True, text=True, umask=0, check=False
    )
    assert done.returncode == 0, done.stderr
    assert _mode(keys) == 0o600
    assert keys.read_text().startswith("auth 1\n1 sha256 ")

    dirs = write_cluster(tmp_path / "ha", ["pc1", "pc2"])
    toml = tmp_path / "cluster.toml"
    done = subprocess.run(
        _hactl("config", "import", str(dirs["pc1"]), "-o", str(toml)),
        capture_output=True,
        text=True,
        umask=0,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _mode(toml) == 0o600


# -- no shell --------------------------------------------------------------------------------

_SHELL_CALLS = {("os", "system"), ("os", "popen"), ("asyncio", "create_subprocess_shell")}


def _shell_uses(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                found.append(f"{path}:{node.lineno}: shell=...")
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and (func.value.id, func.attr) in _SHELL_CALLS
        ):
            found.append(f"{path}:{node.lineno}: {func.value.id}.{func.attr}")
    return found


def test_nothing_in_hacore_or_its_plugins_runs_a_shell() -> None:
    sources = [*ROOT.glob("hacore/**/*.py"), *ROOT.glob("plugins/*/hacore_*/**/*.py")]
    assert len(sources) > 40
    assert [use for path in sources for use in _shell_uses(path)] == []


def test_the_shell_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os, subprocess\nos.system('x')\nsubprocess.run('x', shell=True)\n")
    assert len(_shell_uses(bad)) == 2


HOSTILE = (
    "$(touch {canary}/dollar)",
    "`touch {canary}/backtick`",
    "; touch {canary}/semicolon",
    "x && touch {canary}/and",
    "| touch {canary}/pipe",
    "'\"; touch {canary}/quotes; echo \"'",
    "$IFS*?[]{{}}~ \n newline",
)

_OCF_AGENT = """#!/bin/sh
case "$1" in
meta-data) cat <<'EOF'
<?xml version="1.0"?>
<resource-agent name="Echo" version="1.0">
<version>1.0</version>
<longdesc lang="en">Writes its parameter back, byte for byte.</longdesc>
<shortdesc lang="en">Echo</shortdesc>
<parameters>
<parameter name="out" required="1"><content type="string"/></parameter>
<parameter name="value"><content type="string"/></parameter>
</parameters>
<actions><action name="start" timeout="10s"/><action name="stop" timeout="10s"/>
<action name="monitor" timeout="10s" interval="10s"/><action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
EOF
exit 0;;
start) printf '%s' "$OCF_RESKEY_value" > "$OCF_RESKEY_out"; exit 0;;
*) exit 0;;
esac
"""

_HEARTBEAT_SCRIPT = """#!/bin/sh
# Heartbeat-class: the arguments, then the action.
out="$1"; value="$2"; action="$3"
[ "$action" = start ] && printf '%s' "$value" > "$out"
[ "$action" = status ] && echo stopped
exit 0
"""


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "canary"
    path.mkdir()
    yield path
    assert list(path.iterdir()) == [], "a parameter was executed by a shell"


def test_an_ocf_parameter_that_looks_like_shell_reaches_the_agent_literally(
    tmp_path: Path, canary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HACORE_RSCTMP", str(tmp_path / "rsctmp"))
    script = tmp_path / "ocf" / "resource.d" / "hctest" / "Echo"
    script.parent.mkdir(parents=True)
    script.write_text(_OCF_AGENT)
    script.chmod(0o755)
    agent_class = ocf_agent("hctest", "Echo", root=tmp_path / "ocf")
    for n, template in enumerate(HOSTILE):
        value, out = template.format(canary=canary), tmp_path / f"ocf-{n}.out"
        params = agent_class.resolve({"out": str(out), "value": value})
        asyncio.run(agent_class(Instance(f"echo{n}", params)).start())
        assert out.read_text() == value


def test_a_heartbeat_script_argument_that_looks_like_shell_reaches_it_literally(
    tmp_path: Path, canary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HACORE_RSCTMP", str(tmp_path / "rsctmp"))
    script = tmp_path / "resource.d" / "echo"
    script.parent.mkdir()
    script.write_text(_HEARTBEAT_SCRIPT)
    script.chmod(0o755)
    agent_class = lsb_agent(script)
    for n, template in enumerate(HOSTILE):
        value, out = template.format(canary=canary), tmp_path / f"hb-{n}.out"
        params = agent_class.resolve(agent_class.parse_args([str(out), value]))
        asyncio.run(agent_class(Instance(f"echo{n}", params)).start())
        assert out.read_text() == value
