"""Where a node keeps its files. Everything follows from the configuration source or an option,
so several nodes can run side by side on one machine (one configuration directory each)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG_DIR = Path("/etc/ha.d")
DEFAULT_STATE_DIR = Path("/var/lib/hacore")
DEFAULT_SOCKET = Path("/run/hacore/control.sock")


@dataclass(frozen=True)
class RuntimePaths:
    state_dir: Path
    socket: Path

    @property
    def generation_file(self) -> Path:
        return self.state_dir / "hb_generation"

    @property
    def uuid_file(self) -> Path:
        return self.state_dir / "hb_uuid"

    @property
    def rsctmp(self) -> Path:
        """Agents' pid and state files. /run for the system node (cleared at boot, as OCF's
        HA_RSCTMP); beside the state for any other, so side-by-side nodes do not share it."""
        if self.state_dir == DEFAULT_STATE_DIR:
            return Path("/run/resource-agents")
        return self.state_dir / "rsctmp"


def _is_dir(path: Path) -> bool:
    # A directory this user may not look into (hactl run by a non-root user) is still a
    # directory: the socket below it then refuses them with one line, not a traceback.
    try:
        return path.is_dir()
    except PermissionError:
        return path.suffix != ".toml"


def runtime_paths(
    source: Path, *, state_dir: Path | None = None, socket: Path | None = None
) -> RuntimePaths:
    """The system paths for the system configuration; ``<dir>/state/`` for any other one."""
    config_dir = source if _is_dir(source) or source.suffix != ".toml" else source.parent
    if config_dir.resolve() == DEFAULT_CONFIG_DIR or source == DEFAULT_CONFIG_DIR:
        base_state, base_socket = DEFAULT_STATE_DIR, DEFAULT_SOCKET
    else:
        base_state = config_dir / "state"
        base_socket = base_state / "control.sock"
    return RuntimePaths(state_dir or base_state, socket or base_socket)
