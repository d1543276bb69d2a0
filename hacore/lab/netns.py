"""A network lab made of Linux network namespaces, for tests, ``hactl demo`` and benchmarks.

Shape (see /work/shared/reference/running-peers-in-namespaces.md): one "switch" namespace holding
a plain bridge, one namespace per host, and one veth pair per host whose bridge end (``sw-<name>``)
stays in the switch namespace and whose other end is created directly inside the host namespace as
``eth0``. No lab interface ever exists in the root namespace, so nothing a test does can reach the
machine's own network; and only documentation addresses (RFC 5737, RFC 3849) are ever configured.

Faults are made where a real network makes them, on the switch: a port taken down (a pulled
cable), bridge port isolation (a partition), nftables ``bridge`` rules (one-way cuts and random
loss; this kernel has no netem).

Teardown is unconditional: ``close()`` runs from the context manager, from ``atexit`` and from the
pytest fixture, kills only what this lab started (process groups it holds, then anything still
living in the namespaces it created) and deletes its namespaces.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

__all__ = [
    "Host",
    "Lab",
    "LabCommandError",
    "LabError",
    "check_lab_address",
    "wait_for",
]

T = TypeVar("T")
# What subprocess accepts for stdin/stdout/stderr.
Redirect = int | IO[Any] | None

# The only address space a lab may ever configure: the documentation ranges. Checked on every
# address the lab adds, so a typo cannot put a real address on a (namespaced) interface.
ALLOWED_V4 = (ipaddress.IPv4Network("198.51.100.0/24"), ipaddress.IPv4Network("203.0.113.0/24"))
ALLOWED_V6 = (ipaddress.IPv6Network("2001:db8::/32"),)

BRIDGE = "br0"
IFACE = "eth0"
# Every external command is bounded; these are generous for `ip`/`nft` on a loaded 2-core box.
COMMAND_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0
LINK_TIMEOUT = 5.0
# Host names become `<prefix>-<name>` namespaces and `sw-<name>` ports (IFNAMSIZ: 15 chars).
_HOST_NAME = re.compile(r"[a-z][a-z0-9-]{0,11}")
_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,31}")
_SWITCH = "sw"
_NFT_TABLE = "hacore_lab"

# PID 1 of a host's own PID namespace: it only reaps orphans (a PID-namespace init that never
# waits leaves zombies). SIGCHLD is blocked and collected synchronously, so there is no race
# between "no child has exited" and going to sleep.
_INIT_PROGRAM = """\
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    signal.sigwaitinfo({signal.SIGCHLD})
"""


class LabError(RuntimeError):
    """The lab cannot do what was asked; the message says what to do about it."""


class LabCommandError(LabError):
    """A command run for the lab (or by ``Host.exec``) failed."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        detail = stderr.strip() or stdout.strip() or "no output"
        super().__init__(f"`{' '.join(self.argv)}` exited with {returncode}: {detail}")


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.01,
    what: str = "a condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that; bounded by ``timeout``.

    Raises ``TimeoutError`` naming ``what`` so a failing test says what it was waiting for.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value is not None and value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(interval, remaining))


def _run(
    argv: Sequence[str],
    *,
    timeout: float = COMMAND_TIMEOUT,
    input: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(argv),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and done.returncode != 0:
        raise LabCommandError(argv, done.returncode, done.stdout, done.stderr)
    return done


def _require_tool(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise LabError(f"`{tool}` not found: install it with `apt-get install {package}`")
    return path


def _check_environment() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the namespace lab needs root (it creates network namespaces and bridges): "
            "run as root, e.g. `sudo .venv/bin/pytest`"
        )
    _require_tool("ip", "iproute2")
    _require_tool("sysctl", "procps")


def _allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return any(address in net for net in ALLOWED_V4)
    return any(address in net for net in ALLOWED_V6)


def check_lab_address(cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """Parse ``address/prefix`` and refuse anything outside the documentation ranges."""
    try:
        interface = ipaddress.ip_interface(cidr)
    except ValueError as exc:
        raise LabError(f"{cidr!r} is not an address with a prefix length: {exc}") from None
    if not _allowed(interface.ip):
        raise LabError(
            f"{cidr} is outside the lab's address space: use 198.51.100.0/24, 203.0.113.0/24 "
            "or 2001:db8::/32"
        )
    return interface


def _lab_network(text: str, version: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        network = ipaddress.ip_network(text)
    except ValueError as exc:
        raise LabError(f"lab subnet {text!r} is not a network: {exc}") from None
    allowed: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
    allowed = ALLOWED_V4 if version == 4 else ALLOWED_V6
    if network.version != version or not any(
        network.subnet_of(net)  # type: ignore[arg-type]  # same version checked just before
        for net in allowed
    ):
        ranges = ", ".join(str(net) for net in allowed)
        raise LabError(f"lab subnet {text} must be IPv{version} inside {ranges}")
    return network


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (one-threaded processes such as unshare and sh)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(word) for word in text.split()]


def _netns_pids(netns: str) -> list[int]:
    done = _run(["ip", "netns", "pids", netns], check=False)
    return [int(word) for word in done.stdout.split()] if done.returncode == 0 else []


def _namespace_empty(netns: str) -> bool:
    return not _netns_pids(netns)


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    # Only while the leader is unreaped: a zombie still holds its pid, so the group id cannot
    # have been reused by an unrelated process. After the leader is reaped, stragglers are found
    # by namespace membership instead (see Lab.close).
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


@dataclass(frozen=True, eq=False)
class Host:
    """One machine of the lab: a network namespace with ``eth0`` plugged into the switch."""

    name: str
    netns: str
    iface: str
    address: str
    address6: str
    mac: str
    port: str
    prefixlen: int
    prefixlen6: int
    pid_namespace: bool
    lab: Lab = field(repr=False)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stdin: Redirect = subprocess.DEVNULL,
        stdout: Redirect = subprocess.DEVNULL,
        stderr: Redirect = subprocess.DEVNULL,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process in this host, in its own process group, killed at close.

        ``env`` is added to the lab process's environment.
        """
        return self.lab._spawn(
            self, argv, env=env, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd
        )

    def exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float = COMMAND_TIMEOUT,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a short command in this host and wait for it (bounded by ``timeout``).

        Raises ``LabCommandError`` on a non-zero exit when ``check``; ``subprocess.TimeoutExpired``
        (after killing it) when it outlives ``timeout``.
        """
        return _run(self.lab._prefix(self) + list(argv), timeout=timeout, check=check, input=input)

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group of ``proc`` (from ``run``); on SIGKILL, reap it."""
        _kill_group(proc, sig)
        if sig == signal.SIGKILL:
            proc.wait(timeout=KILL_TIMEOUT)

    def addresses(self) -> set[str]:
        """Every address on ``eth0`` now (IPv4, IPv6 global and link-local), without prefix."""
        done = _run(["ip", "-j", "-n", self.netns, "address", "show", "dev", self.iface])
        links: list[dict[str, Any]] = json.loads(done.stdout or "[]")
        return {info["local"] for link in links for info in link.get("addr_info", [])}

    def neighbour_mac(self, ip: str) -> str | None:
        """The MAC this host would send to for ``ip`` now, or None if unresolved."""
        done = _run(["ip", "-j", "-n", self.netns, "neigh", "show", "to", ip, "dev", self.iface])
        for entry in json.loads(done.stdout or "[]"):
            states = set(entry.get("state", []))
            if "lladdr" in entry and not states & {"FAILED", "INCOMPLETE"}:
                return str(entry["lladdr"])
        return None

    def add_address(self, cidr: str) -> None:
        """Add a documentation-range address (e.g. a virtual IP) to ``eth0``."""
        interface = check_lab_address(cidr)
        extra = ["broadcast", "+"] if interface.version == 4 else ["nodad"]
        _run(["ip", "-n", self.netns, "address", "add", str(interface), *extra, "dev", self.iface])

    def remove_address(self, cidr: str) -> None:
        interface = check_lab_address(cidr)
        _run(["ip", "-n", self.netns, "address", "del", str(interface), "dev", self.iface])


@dataclass
class _Tracked:
    host: str
    proc: subprocess.Popen[bytes]


@dataclass
class _Init:
    """The PID-namespace init of a ``pid_namespace`` host: ``unshare`` and its forked child."""

    proc: subprocess.Popen[bytes]
    pid: int


class Lab:
    """A switch namespace with a bridge, and hosts plugged into it. Use as a context manager."""

    def __init__(
        self,
        prefix: str | None = None,
        subnet: str = "198.51.100.0/24",
        subnet6: str = "2001:db8:1::/64",
    ) -> None:
        # Validate everything that needs no privilege first, so a bad argument is reported as
        # such even when not running as root.
        subnet4, network6 = _lab_network(subnet, 4), _lab_network(subnet6, 6)
        assert isinstance(subnet4, ipaddress.IPv4Network)  # _lab_network checked the version
        self.subnet = subnet4
        self.subnet6 = network6
        if prefix is not None and not _PREFIX.fullmatch(prefix):
            raise LabError(f"lab prefix {prefix!r} must match {_PREFIX.pattern}")
        _check_environment()
        self._closed = False
        self._namespaces: list[str] = []
        self._procs: list[_Tracked] = []
        self._inits: dict[str, _Init] = {}
        self._next_index = 1
        self._used: set[ipaddress.IPv4Address] = set()
        self._down: set[str] = set()
        self._partitions: set[frozenset[str]] = set()
        self._blocks: set[tuple[str, str]] = set()
        self._loss: dict[str, float] = {}
        # host -> the switch-side port that stands for it on the bridge while a forwarder
        # (hacore.lab.faults.Wire) sits between the host's own port and the bridge.
        self._bridge_ports: dict[str, str] = {}
        self.hosts: dict[str, Host] = {}
        self.id, self.prefix = self._choose_prefix(prefix)
        self.switch_ns = f"{self.prefix}-{_SWITCH}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self._owner_pid = os.getpid()
        atexit.register(self._close_at_exit)
        try:
            self._create_switch()
        except BaseException:
            self.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def namespaces(self) -> list[str]:
        """The namespaces this lab created (and will delete)."""
        return list(self._namespaces)

    def close(self) -> None:
        """Kill every process the lab started, delete its namespaces and files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._close_at_exit)
        for tracked in reversed(self._procs):
            _kill_group(tracked.proc, signal.SIGKILL)
        problems: list[str] = []
        for name, init in self._inits.items():
            try:
                self._kill_init(init)
            except subprocess.TimeoutExpired:
                problems.append(f"the PID namespace of {name} did not die")
        # A process started through Host.run may have left its process group (a daemon calls
        # setsid, as heartbeat does). It still lives in a namespace that this lab created and
        # nothing else uses, so it is ours: kill whatever is left in those namespaces.
        for netns in self._namespaces:
            for pid in _netns_pids(netns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for tracked in self._procs:
            try:
                tracked.proc.wait(timeout=KILL_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"process {tracked.proc.pid} did not die")
        for netns in self._namespaces:
            try:
                wait_for(
                    functools.partial(_namespace_empty, netns),
                    KILL_TIMEOUT,
                    what=f"the processes in {netns} to die",
                )
            except TimeoutError as exc:
                problems.append(str(exc))
        for netns in reversed(self._namespaces):
            done = _run(["ip", "netns", "delete", netns], check=False)
            if done.returncode != 0 and os.path.exists(f"/run/netns/{netns}"):
                problems.append(f"cannot delete namespace {netns}: {done.stderr.strip()}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        if problems:
            raise LabError("lab teardown incomplete: " + "; ".join(problems))

    def _close_at_exit(self) -> None:
        # A forked child (multiprocessing, say) inherits this handler; only the process that
        # built the lab may tear it down.
        if os.getpid() == self._owner_pid:
            self.close()

    def _choose_prefix(self, prefix: str | None) -> tuple[str, str]:
        existing = set(_run(["ip", "netns", "list"]).stdout.split())

        def taken(candidate: str) -> bool:
            return any(name.startswith(f"{candidate}-") for name in existing)

        if prefix is not None:
            if taken(prefix):
                raise LabError(
                    f"namespaces named {prefix}-* already exist (a leftover lab?): delete them "
                    "with `ip netns delete` or choose another prefix"
                )
            return secrets.token_hex(2), prefix
        for _ in range(16):
            lab_id = secrets.token_hex(2)
            if not taken(f"hc-{lab_id}"):
                return lab_id, f"hc-{lab_id}"
        raise LabError("no free lab id: too many leftover hc-* namespaces (`ip netns list`)")

    # -- building --------------------------------------------------------------------------

    def _add_netns(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)

    def _ip_batch(self, netns: str, commands: Iterable[str]) -> None:
        # One `ip` process for several changes: a host costs a handful of forks, not a dozen.
        _run(["ip", "-n", netns, "-batch", "-"], input="\n".join(commands) + "\n")

    def _sysctl(self, netns: str, settings: Mapping[str, str]) -> None:
        pairs = [f"{key}={value}" for key, value in settings.items()]
        _run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *pairs])

    def _create_switch(self) -> None:
        self._add_netns(self.switch_ns)
        # The switch must stay silent: without IPv6 its ports would send their own router
        # solicitations and MLD reports into the lab.
        self._sysctl(
            self.switch_ns,
            {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"},
        )
        # No STP, no forwarding delay, no multicast snooping: a dumb switch that floods
        # broadcasts and multicasts at once (heartbeat's bcast/mcast links rely on that).
        self._ip_batch(
            self.switch_ns,
            [
                "link set lo up",
                f"link add {BRIDGE} type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
                f"link set {BRIDGE} up",
            ],
        )

    def add_host(
        self,
        name: str,
        *,
        address: str | None = None,
        pid_namespace: bool = False,
    ) -> Host:
        """Plug a new host into the switch.

        Its IPv4 address is the next free ``.N`` of the subnet unless ``address`` is given; its
        IPv6 address and MAC (``02:00:`` + the IPv4 bytes) follow from the IPv4 address. With
        ``pid_namespace`` every process it runs lives in one PID namespace, so ``power_off``
        kills all of them at once, as pulling the plug would.
        """
        self._check_open()
        if not _HOST_NAME.fullmatch(name) or name == _SWITCH:
            raise LabError(
                f"host name {name!r} must match {_HOST_NAME.pattern} and not be {_SWITCH!r}"
            )
        if name in self.hosts:
            raise LabError(f"the lab already has a host named {name}")
        ip4 = self._assign_address(address)
        offset = int(ip4) - int(self.subnet.network_address)
        ip6 = self.subnet6.network_address + offset
        mac = "02:00:" + ":".join(f"{byte:02x}" for byte in ip4.packed)
        netns = f"{self.prefix}-{name}"
        port = f"{_SWITCH}-{name}"
        if pid_namespace:
            _require_tool("unshare", "util-linux")
            _require_tool("nsenter", "util-linux")
        self._add_netns(netns)
        self._ip_batch(
            self.switch_ns,
            [
                # The peer is born inside the host namespace: it never exists in the root one.
                f"link add {port} type veth peer name {IFACE} netns {netns}",
                f"link set {port} master {BRIDGE}",
                f"link set {port} up",
            ],
        )
        self._sysctl(
            netns,
            {
                # Learn a gratuitous ARP for an address not in the cache yet (a client must see
                # a virtual IP move to the new holder's MAC).
                f"net.ipv4.conf.{IFACE}.arp_accept": "1",
                # Link-local addresses usable at once; the lab has no duplicates to detect.
                f"net.ipv6.conf.{IFACE}.accept_dad": "0",
            },
        )
        self._ip_batch(
            netns,
            [
                "link set lo up",
                f"link set {IFACE} address {mac}",
                # `broadcast +`: heartbeat's bcast link sends to the interface's broadcast
                # address, which `ip` leaves at 0.0.0.0 unless asked.
                f"address add {ip4}/{self.subnet.prefixlen} broadcast + dev {IFACE}",
                f"address add {ip6}/{self.subnet6.prefixlen} dev {IFACE} nodad",
                f"link set {IFACE} up",
            ],
        )
        host = Host(
            name=name,
            netns=netns,
            iface=IFACE,
            address=str(ip4),
            address6=str(ip6),
            mac=mac,
            port=port,
            prefixlen=self.subnet.prefixlen,
            prefixlen6=self.subnet6.prefixlen,
            pid_namespace=pid_namespace,
            lab=self,
        )
        self.hosts[name] = host
        if pid_namespace:
            self._start_init(host)
        self._wait_link(host)
        return host

    def _assign_address(self, address: str | None) -> ipaddress.IPv4Address:
        if address is not None:
            try:
                ip4 = ipaddress.IPv4Address(address.split("/")[0])
            except ValueError:
                raise LabError(f"host address {address!r} is not an IPv4 address") from None
            if ip4 not in self.subnet:
                raise LabError(f"host address {address} is not inside the lab subnet {self.subnet}")
            if ip4 in {self.subnet.network_address, self.subnet.broadcast_address}:
                raise LabError(f"host address {address} is the subnet's network or broadcast")
        else:
            while True:
                ip4 = self.subnet.network_address + self._next_index
                self._next_index += 1
                if ip4 >= self.subnet.broadcast_address:
                    raise LabError(f"the lab subnet {self.subnet} is full")
                if ip4 not in self._used:
                    break
        if ip4 in self._used:
            raise LabError(f"address {ip4} is already used by another host")
        self._used.add(ip4)
        return ip4

    def _wait_link(self, host: Host) -> None:
        # `ip link set up` returns before the kernel has activated the device (linkwatch runs
        # later); packets sent in between are dropped. Wait until both ends say so.
        def ready() -> bool:
            # The bridge port may be a forwarder's (splice): that one must forward.
            bridge_port = self.bridge_port(host)
            port = json.loads(
                _run(["ip", "-j", "-d", "-n", self.switch_ns, "link", "show", bridge_port]).stdout
            )[0]
            state = port.get("linkinfo", {}).get("info_slave_data", {}).get("state")
            link = json.loads(
                _run(["ip", "-j", "-n", host.netns, "link", "show", host.iface]).stdout
            )[0]
            return bool(state == "forwarding" and link.get("operstate") == "UP")

        wait_for(ready, LINK_TIMEOUT, what=f"{host.name}'s link to come up")

    # -- processes -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LabError("this lab is closed")

    def _prefix(self, host: Host) -> list[str]:
        if not host.pid_namespace:
            return ["ip", "netns", "exec", host.netns]
        init = self._inits.get(host.name)
        if init is None:
            raise LabError(f"host {host.name} is powered off: call lab.power_on() first")
        # nsenter forks once it has joined the PID namespace, so the command is a process of
        # that namespace; the mount namespace is the init's, where /proc and /sys match.
        return ["nsenter", f"--target={init.pid}", "--net", "--pid", "--mount", "--"]

    def _spawn(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None,
        stdin: Redirect,
        stdout: Redirect,
        stderr: Redirect,
        cwd: Path | None,
    ) -> subprocess.Popen[bytes]:
        self._check_open()
        full_env = {**os.environ, **env} if env is not None else None
        proc = subprocess.Popen(
            self._prefix(host) + list(argv),
            env=full_env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            # A process group of its own: killing the group reaches what it forked too.
            start_new_session=True,
        )
        self._procs.append(_Tracked(host.name, proc))
        return proc

    def _start_init(self, host: Host) -> None:
        # `ip netns exec` execs unshare (same pid); unshare forks the namespace's PID 1 and
        # waits for it. --kill-child: if unshare dies, the kernel kills PID 1 and with it the
        # whole namespace, so even an interrupted teardown leaves nothing behind.
        proc = subprocess.Popen(
            [
                *f"ip netns exec {host.netns}".split(),
                *["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--"],
                *(sys.executable, "-c", _INIT_PROGRAM),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def child() -> int | None:
            if proc.poll() is not None:
                raise LabError(f"the PID namespace of {host.name} exited with {proc.returncode}")
            children = _children(proc.pid)
            return children[0] if children else None

        try:
            pid = wait_for(child, KILL_TIMEOUT, what=f"the PID namespace of {host.name}")
        except BaseException:
            _kill_group(proc, signal.SIGKILL)
            proc.wait(timeout=KILL_TIMEOUT)
            raise
        self._inits[host.name] = _Init(proc, pid)

    def _kill_init(self, init: _Init) -> None:
        # SIGKILL to a PID namespace's init from outside it is always delivered, and the kernel
        # then kills every other process of that namespace.
        if init.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init.pid, signal.SIGKILL)
        _kill_group(init.proc, signal.SIGKILL)
        init.proc.wait(timeout=KILL_TIMEOUT)

    def power_off(self, host: Host) -> None:
        """Pull the plug: kill every process of the host at once, then take its link down.

        Killing first matters: a daemon that saw its link drop could still say goodbye or
        release an address, which a machine losing power never does.
        """
        self._check_open()
        init = self._inits.pop(host.name, None)
        if init is not None:
            self._kill_init(init)
        for tracked in self._procs:
            if tracked.host == host.name:
                _kill_group(tracked.proc, signal.SIGKILL)
        # Without a PID namespace, a daemon that left its process group is still in the
        # host's network namespace, which is the lab's: everything there belongs to the host.
        for pid in _netns_pids(host.netns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for tracked in self._procs:
            if tracked.host == host.name:
                tracked.proc.wait(timeout=KILL_TIMEOUT)
        wait_for(
            functools.partial(_namespace_empty, host.netns),
            KILL_TIMEOUT,
            what=f"every process of {host.name} to die",
        )
        self.link_down(host)

    def power_on(self, host: Host) -> None:
        """Boot the host again: only its own addresses, an empty neighbour cache, link up.

        A virtual IP it held stays on its interface after ``power_off``; a reboot would have
        cleared it, so this does too.
        """
        self._check_open()
        own = {host.address, host.address6}
        done = _run(["ip", "-j", "-n", host.netns, "address", "show", "dev", host.iface])
        for link in json.loads(done.stdout or "[]"):
            for info in link.get("addr_info", []):
                if info["local"] not in own and info.get("scope") != "link":
                    cidr = f"{info['local']}/{info['prefixlen']}"
                    _run(["ip", "-n", host.netns, "address", "del", cidr, "dev", host.iface])
        _run(["ip", "-n", host.netns, "neigh", "flush", "dev", host.iface])
        if host.pid_namespace and host.name not in self._inits:
            self._start_init(host)
        self.link_up(host)

    # -- faults ----------------------------------------------------------------------------

    def link_down(self, host: Host) -> None:
        """Take the host's switch port down: the host sees its carrier drop (a pulled cable)."""
        self._check_open()
        _run(["ip", "-n", self.switch_ns, "link", "set", host.port, "down"])
        self._down.add(host.name)

    def link_up(self, host: Host) -> None:
        """Put the cable back; returns once frames flow again."""
        self._check_open()
        _run(["ip", "-n", self.switch_ns, "link", "set", host.port, "up"])
        self._down.discard(host.name)
        self._wait_link(host)

    def partition(self, a: Host, b: Host) -> None:
        """Cut ``a`` and ``b`` off from each other (both ways); both still reach everyone else.

        Uses bridge port isolation: isolated ports talk to every other port but not to each
        other. That cannot express every set of partitions (isolating a-b and c-d also cuts
        a-c), so such a request is refused; use ``block`` both ways for those.
        """
        self._check_open()
        wanted = {*self._partitions, frozenset((a.name, b.name))}
        isolated = set().union(*wanted)
        for x in isolated:
            for y in isolated:
                if x < y and frozenset((x, y)) not in wanted:
                    raise LabError(
                        f"port isolation would also cut {x} from {y}: use lab.block() in both "
                        "directions for this partition"
                    )
        self._partitions = wanted
        self._apply_isolation()

    def heal(self, a: Host, b: Host) -> None:
        self._check_open()
        self._partitions.discard(frozenset((a.name, b.name)))
        self._apply_isolation()

    def _apply_isolation(self) -> None:
        isolated: set[str] = set().union(*self._partitions)
        commands = [
            f"link set {self.bridge_port(host)} type bridge_slave isolated "
            + ("on" if name in isolated else "off")
            for name, host in self.hosts.items()
        ]
        self._ip_batch(self.switch_ns, commands)

    def block(self, src: Host, dst: Host) -> None:
        """Drop every frame from ``src`` to ``dst`` (one way; broadcasts included)."""
        self._check_open()
        self._blocks.add((src.name, dst.name))
        self._apply_nft()

    def unblock(self, src: Host, dst: Host) -> None:
        self._check_open()
        self._blocks.discard((src.name, dst.name))
        self._apply_nft()

    def loss(self, host: Host, percent: float) -> None:
        """Drop ``percent`` % of the frames from the host and, independently, of those to it.

        A round trip through a lossy host therefore fails with probability 1 - (1 - p)². ARP is
        lost too: a failed resolution silences a peer for a second, so resolve first when
        measuring. Zero removes the loss.
        """
        self._check_open()
        if not 0 <= percent <= 100:
            raise LabError(f"loss must be between 0 and 100 percent, not {percent}")
        if percent:
            self._loss[host.name] = percent
        else:
            self._loss.pop(host.name, None)
        self._apply_nft()

    def clear_faults(self) -> None:
        """Heal partitions, lift blocks and loss, and plug back cables taken out by link_down."""
        self._check_open()
        self._partitions.clear()
        self._apply_isolation()
        self._blocks.clear()
        self._loss.clear()
        self._apply_nft()
        for name in sorted(self._down):
            self.link_up(self.hosts[name])

    def _apply_nft(self) -> None:
        _require_tool("nft", "nftables")
        rules: list[str] = []
        for src, dst in sorted(self._blocks):
            src_port, dst_port = (
                self.bridge_port(self.hosts[src]),
                self.bridge_port(self.hosts[dst]),
            )
            rules.append(f'iifname "{src_port}" oifname "{dst_port}" drop')
        for name, percent in sorted(self._loss.items()):
            # Per ten thousand, so fractional percentages work.
            threshold = round(percent * 100)
            port = self.bridge_port(self.hosts[name])
            rules.append(f'iifname "{port}" numgen random mod 10000 < {threshold} drop')
            rules.append(f'oifname "{port}" numgen random mod 10000 < {threshold} drop')
        # Declaring then deleting the table makes the delete succeed whether or not it existed;
        # the whole file is one transaction, so the rule set changes atomically. The forward
        # hook runs once per egress port, so flooded frames are filtered per destination too.
        # (The chain is not called "fwd": that is a reserved word in nft.)
        script = [f"table bridge {_NFT_TABLE}", f"delete table bridge {_NFT_TABLE}"]
        if rules:
            script.append(f"table bridge {_NFT_TABLE} {{")
            script.append("  chain faults {")
            script.append("    type filter hook forward priority 0; policy accept;")
            script.extend(f"    {rule}" for rule in rules)
            script.append("  }")
            script.append("}")
        _run(["ip", "netns", "exec", self.switch_ns, "nft", "-f", "-"], input="\n".join(script))

    # -- forwarders between a host and the switch (hacore.lab.faults) -------------------------

    def bridge_port(self, host: Host) -> str:
        """The bridge port that carries ``host``'s frames now: its own ``sw-<name>``, or the
        forwarder's port while one is spliced in (``splice``)."""
        return self._bridge_ports.get(host.name, host.port)

    def run_in_switch(
        self,
        argv: Sequence[str],
        *,
        stdin: Redirect = subprocess.DEVNULL,
        stdout: Redirect = subprocess.DEVNULL,
        stderr: Redirect = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        """Start a process in the switch namespace (a forwarder); killed at close."""
        self._check_open()
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.switch_ns, *argv],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        # No host of that name exists (host names never start with a dot): power_off of a
        # host never touches it, close() does.
        self._procs.append(_Tracked(".switch", proc))
        return proc

    def add_wire_ports(self, host: Host) -> tuple[str, str]:
        """Create a veth pair in the switch for a forwarder of ``host``: (``wa-<name>``, the
        end the forwarder uses, ``wb-<name>``, the end that will join the bridge). Both up and
        promiscuous, as is the host's own port, so every frame reaches a packet socket."""
        self._check_open()
        inner, outer = f"wa-{host.name}", f"wb-{host.name}"
        self._ip_batch(
            self.switch_ns,
            [
                f"link add {inner} type veth peer name {outer}",
                f"link set {inner} promisc on up",
                f"link set {outer} promisc on up",
                f"link set {host.port} promisc on",
            ],
        )
        return inner, outer

    def splice(self, host: Host, outer: str) -> None:
        """Take ``host``'s own port off the bridge and put ``outer`` in its place: from now on
        the host reaches the switch only through the forwarder that links the two. Partitions,
        blocks and loss follow the host to its new port."""
        self._check_open()
        self._ip_batch(
            self.switch_ns,
            [f"link set {host.port} nomaster", f"link set {outer} master {BRIDGE}"],
        )
        self._bridge_ports[host.name] = outer
        self._apply_isolation()
        self._apply_nft()
        self._wait_forwarding(outer)

    def unsplice(self, host: Host) -> None:
        """Put ``host``'s own port back on the bridge (the forwarder's pair stays, idle)."""
        self._check_open()
        outer = self._bridge_ports.pop(host.name, None)
        if outer is None:
            return
        self._ip_batch(
            self.switch_ns,
            [f"link set {outer} nomaster", f"link set {host.port} master {BRIDGE}"],
        )
        self._apply_isolation()
        self._apply_nft()
        self._wait_forwarding(host.port)

    def _wait_forwarding(self, port: str) -> None:
        def ready() -> bool:
            info = json.loads(
                _run(["ip", "-j", "-d", "-n", self.switch_ns, "link", "show", port]).stdout
            )[0]
            state = info.get("linkinfo", {}).get("info_slave_data", {}).get("state")
            return bool(state == "forwarding")

        wait_for(ready, LINK_TIMEOUT, what=f"bridge port {port} to forward")
