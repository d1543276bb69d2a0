"""The shape of cluster.toml: its tables and the keys each one accepts.

A key not listed here is refused with a "did you mean" hint; tests/test_docs.py checks that
docs/configuration.md lists exactly these tables and keys.
"""

from __future__ import annotations

from hacore.config.model import LinkKind

# The top-level tables (and arrays of tables).
TOP = ("cluster", "timers", "link", "auth", "ping", "logging", "metrics", "control", "group")

# The keys of each table.
CLUSTER = ("name", "nodes", "local_node", "auto_failback", "udpport", "hbgenmethod", "realtime")
TIMERS = ("keepalive", "deadtime", "warntime", "initdead", "deadping", "freshness")
LINK = ("kind", "interface", "port", "peer", "group", "ttl", "loop")
AUTH = ("active", "key")
KEY = ("index", "method", "secret", "secret_hex", "secret_file")
PING = ("nodes", "group")
PING_GROUP = ("name", "addresses")
LOGGING = ("file", "debugfile", "facility", "debug")
METRICS = ("address",)
CONTROL = ("group",)
GROUP = ("node", "resources", "resource")
RESOURCE = ("agent", "args", "params", "monitor_interval")

# The keys of [[auth.key]] that give its secret, one of which a keyed method needs.
SECRETS = ("secret", "secret_hex", "secret_file")
# The link kinds that take group, ttl and loop.
MCAST_KINDS = (LinkKind.MCAST, LinkKind.MCAST6)
