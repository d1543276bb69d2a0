"""Reading an Apache configuration for the few directives the agent needs.

The agent must know where httpd writes its pid file and its error log, which address and port
it listens on, and where the status handler lives. httpd cannot be asked cheaply (``-t -D
DUMP_*`` is a full start-up parse that says nothing for a broken file), so, like OCF's
apache-conf.sh, this reads the files itself: ``Include``/``IncludeOptional`` are followed,
``${VAR}`` is expanded from ``Define`` and the environment (the sourced envfiles), and
conditional sections (``<IfModule>``, ``<IfDefine>``) are read as if true. That is enough for
the first ``Listen`` and the paths; it is not a validator, httpd's own ``-t`` is.
"""

from __future__ import annotations

import glob
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_ERROR_LOG",
    "DEFAULT_PID_FILE",
    "DEFAULT_RUNTIME_DIR",
    "DEFAULT_SERVER_ROOT",
    "ApacheConfig",
    "Listen",
    "parse_listen",
    "read_config",
]

# Debian's compiled-in defaults (`apache2 -V`: HTTPD_ROOT, DEFAULT_PIDLOG, DEFAULT_ERRORLOG;
# DefaultRuntimeDir defaults to "logs" under the server root in httpd 2.4).
DEFAULT_SERVER_ROOT = Path("/etc/apache2")
DEFAULT_PID_FILE = Path("/run/apache2.pid")
DEFAULT_ERROR_LOG = "logs/error_log"
DEFAULT_RUNTIME_DIR = "logs"

# Deeper than any real configuration, shallow enough to stop an Include loop at once.
_MAX_INCLUDE_DEPTH = 16
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_WILDCARD_HOSTS = {"*", "0.0.0.0", "[::]", "::"}


@dataclass(frozen=True)
class Listen:
    """One ``Listen [address:]port [protocol]``. ``host`` is None for every address."""

    host: str | None
    port: int
    protocol: str | None = None

    @property
    def https(self) -> bool:
        # httpd's own default: port 443 speaks https unless a protocol says otherwise.
        return self.protocol == "https" if self.protocol else self.port == 443

    @property
    def local_host(self) -> str:
        """The address a client on this node connects to: loopback for a wildcard."""
        if self.host is None:
            return "127.0.0.1"
        if self.host == "::":
            return "::1"
        return self.host


def parse_listen(args: list[str]) -> Listen | None:
    """``Listen`` arguments as httpd reads them; None if they are not a Listen httpd accepts."""
    if not args:
        return None
    address = args[0]
    protocol = args[1].lower() if len(args) > 1 else None
    host: str | None
    if address.startswith("["):
        inner, _, rest = address[1:].partition("]")
        host, port = inner, rest.removeprefix(":")
    elif ":" in address:
        host, port = address.rsplit(":", 1)
    else:
        host, port = None, address
    if not port.isdigit() or not 0 < int(port) < 65536:
        return None
    if host is not None and (host in _WILDCARD_HOSTS or not host):
        host = "::" if host in ("::", "[::]") else None
    return Listen(host, int(port), protocol)


@dataclass(frozen=True)
class ApacheConfig:
    """What the agent needs to know of one configuration (paths absolute)."""

    path: Path
    server_root: Path
    runtime_dir: Path
    pid_file: Path | None  # None: no PidFile directive (httpd would use DEFAULT_PID_FILE)
    error_log: Path | None  # None: piped or syslog, nothing to read
    listens: tuple[Listen, ...]
    status_location: str | None  # the <Location> whose handler is server-status
    files: tuple[Path, ...]  # every file read, in order

    def listen_for(self, port: int | None) -> Listen:
        """The Listen the agent checks: the first one on ``port``, else the first one (httpd
        listens on port 80 when the configuration has none)."""
        if port is not None:
            same = [entry for entry in self.listens if entry.port == port]
            if same:
                return same[0]
            host = self.listens[0].host if self.listens else None
            return Listen(host, port)
        return self.listens[0] if self.listens else Listen(None, 80)

    def status_url(self, port: int | None = None) -> str:
        """OCF's default status URL: the server-status location (else the root page) on the
        Listen for ``port``, from this node (loopback for a wildcard Listen)."""
        listen = self.listen_for(port)
        host = listen.local_host
        if ":" in host:
            host = f"[{host}]"
        default = 443 if listen.https else 80
        where = host if listen.port == default else f"{host}:{listen.port}"
        scheme = "https" if listen.https else "http"
        return f"{scheme}://{where}{self.status_location or '/'}"


@dataclass
class _State:
    env: Mapping[str, str]
    server_root: Path
    defines: dict[str, str] = field(default_factory=dict)
    sections: list[tuple[str, str]] = field(default_factory=list)  # (name, first argument)
    runtime_dir: str | None = None
    pid_file: str | None = None
    error_log: str | None = None
    listens: list[Listen] = field(default_factory=list)
    status_location: str | None = None
    files: list[Path] = field(default_factory=list)
    reading: list[Path] = field(default_factory=list)


def read_config(
    path: Path, env: Mapping[str, str], server_root: Path | None = None
) -> ApacheConfig:
    """Read ``path`` and everything it includes. ``server_root`` is httpd's ``-d``. Raises
    OSError if ``path`` itself cannot be read; unreadable includes are skipped (httpd reports
    them itself when it starts)."""
    state = _State(env=env, server_root=server_root or DEFAULT_SERVER_ROOT)
    config_path = path if path.is_absolute() else state.server_root / path
    text = config_path.read_text(errors="replace")
    _read_text(state, config_path, text)
    root = state.server_root
    runtime_dir = _under(root, state.runtime_dir or DEFAULT_RUNTIME_DIR)
    return ApacheConfig(
        path=config_path,
        server_root=root,
        runtime_dir=runtime_dir,
        # httpd 2.4 puts a relative PidFile under DefaultRuntimeDir, a relative log under
        # ServerRoot (ap_runtime_dir_relative vs ap_server_root_relative).
        pid_file=_under(runtime_dir, state.pid_file) if state.pid_file else None,
        error_log=_log_path(root, state.error_log or DEFAULT_ERROR_LOG),
        listens=tuple(state.listens),
        status_location=state.status_location,
        files=tuple(state.files),
    )


def _under(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def _log_path(root: Path, value: str) -> Path | None:
    if value.startswith("|") or value.startswith("syslog"):
        return None
    return _under(root, value)


def _read_text(state: _State, path: Path, text: str) -> None:
    state.files.append(path)
    state.reading.append(path)
    try:
        for line in _logical_lines(text):
            _directive(state, _expand(state, line))
    finally:
        state.reading.pop()


def _logical_lines(text: str) -> Iterator[str]:
    """Lines as httpd sees them: a trailing backslash continues a line, ``#`` starts a comment
    only at the beginning of one."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line and not line.startswith("#"):
            yield line
    if pending.strip() and not pending.lstrip().startswith("#"):
        yield pending.strip()


def _expand(state: _State, line: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = state.defines.get(name, state.env.get(name))
        # httpd leaves an undefined variable as it is (and warns): so do we.
        return found if found is not None else match.group(0)

    return _VARIABLE.sub(value, line)


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: httpd would take the words as they are
        return text.split()


def _directive(state: _State, line: str) -> None:
    if line.startswith("</"):
        name = line[2:].rstrip(">").strip().lower()
        if state.sections and state.sections[-1][0] == name:
            state.sections.pop()
        return
    if line.startswith("<"):
        words = _words(line[1:].rstrip().removesuffix(">"))
        if words:
            state.sections.append((words[0].lower(), words[1] if len(words) > 1 else ""))
        return
    words = _words(line)
    if not words:
        return
    name, args = words[0].lower(), words[1:]
    in_vhost = any(section == "virtualhost" for section, _ in state.sections)
    if name in ("include", "includeoptional") and args:
        _include(state, args[0])
    elif name == "define" and args:
        state.defines[args[0]] = args[1] if len(args) > 1 else ""
    elif name == "undefine" and args:
        state.defines.pop(args[0], None)
    elif name == "serverroot" and args:
        state.server_root = Path(args[0])
    elif name == "defaultruntimedir" and args:
        state.runtime_dir = args[0]
    elif name == "pidfile" and args:
        state.pid_file = args[0]
    elif name == "errorlog" and args and not in_vhost:
        state.error_log = args[0]
    elif name == "listen":
        listen = parse_listen(args)
        if listen is not None:
            state.listens.append(listen)
    elif name == "sethandler" and args and args[0].lower() == "server-status":
        locations = [arg for section, arg in state.sections if section == "location"]
        if locations and state.status_location is None:
            state.status_location = locations[-1]


def _include(state: _State, pattern: str) -> None:
    if len(state.reading) >= _MAX_INCLUDE_DEPTH:
        return
    base = pattern if Path(pattern).is_absolute() else str(state.server_root / pattern)
    # httpd reads matches in alphabetical order, and a directory as every file below it.
    for match in sorted(glob.glob(base)):
        target = Path(match)
        files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        for file in files:
            if file in state.reading:
                continue  # an Include loop: httpd refuses it, and we must not recurse forever
            try:
                text = file.read_text(errors="replace")
            except OSError:
                continue
            _read_text(state, file, text)
