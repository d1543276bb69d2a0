"""The apache agent's meta-data: OCF apache's parameters that matter, its timeouts, and the
checks that make a parameter that can never work a configuration error at ``hactl config
check`` rather than at failover."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from hacore.agent import Action, Metadata, Parameter, ParamType

__all__ = [
    "DEFAULT_CONFIGFILE",
    "DEFAULT_ENVFILES",
    "DEFAULT_HTTPD",
    "DEFAULT_TESTREGEX",
    "FOREGROUND_OPTIONS",
    "METADATA",
    "parameter_problem",
]

DEFAULT_CONFIGFILE = "/etc/apache2/apache2.conf"
DEFAULT_HTTPD = "/usr/sbin/apache2"
DEFAULT_ENVFILES = "/etc/apache2/envvars"
DEFAULT_TESTREGEX = "</ *html *>"  # OCF's: the end of an HTML page, matched case-insensitively
# Options that keep httpd in the foreground: the agent's launch would never return.
FOREGROUND_OPTIONS = frozenset({"-X", "-DFOREGROUND", "-DNO_DETACH", "-DONE_PROCESS"})

_PARAMETERS = (
    Parameter(
        "configfile",
        "Configuration file path",
        "The full path of the Apache configuration file. Nodes that share a machine (a test "
        "cluster in namespaces) each have their own: see hacore_apache.site.",
        default=DEFAULT_CONFIGFILE,
        unique=True,
    ),
    Parameter(
        "httpd",
        "Full path name of the httpd binary",
        "The httpd binary (a bare name is looked up in PATH).",
        default=DEFAULT_HTTPD,
    ),
    Parameter(
        "port",
        "httpd port",
        "The port the monitor connects to when statusurl is not set. Default: the port of the "
        "first Listen directive in the configuration, else 80.",
        ParamType.INTEGER,
    ),
    Parameter(
        "statusurl",
        "url name",
        "The URL that start and monitor depth 10 fetch, http or https (certificates are not "
        "verified), from loopback; monitor depth 0 connects to its host and port. Default: the "
        "<Location> whose handler is server-status, on the first Listen address (loopback for "
        "a wildcard), else that address's root page.",
    ),
    Parameter(
        "testregex",
        "monitor regular expression",
        "A regular expression (case-insensitive) that the page at statusurl must contain.",
        default=DEFAULT_TESTREGEX,
    ),
    Parameter(
        "options",
        "command line options",
        "Extra options for httpd, split into words as a shell would (but no shell runs). "
        "Options that keep httpd in the foreground are refused.",
    ),
    Parameter(
        "envfiles",
        "environment settings files",
        "Files (separated by spaces) sourced by /bin/sh before httpd runs, for the APACHE_* "
        "variables of Debian's configuration. Missing files are skipped. The run, lock and log "
        "directories they name are created, as apache2ctl does.",
        default=DEFAULT_ENVFILES,
    ),
    Parameter(
        "pidfile",
        "pid file",
        "The pid file. Default: the configuration's PidFile, else "
        "$HACORE_RSCTMP/apache-<instance>.pid. A pid file that is not the configuration's is "
        "passed to httpd with -c PidFile.",
        unique=True,
    ),
)

METADATA = Metadata(
    name="apache",
    shortdesc="Manages an Apache Web server instance",
    longdesc=(
        "Starts, stops and monitors an Apache HTTP server (Debian's apache2 by default). Start "
        "runs httpd -DSTATUS <options> -f <configfile> and returns once the status URL answers "
        "and matches testregex. Stop asks for a graceful stop (SIGWINCH), then sends SIGTERM, "
        "then SIGKILL to the master and every process of its group, within the stop timeout. "
        "Monitor depth 0 checks the master process and that its port accepts a connection; "
        "depth 10 also fetches the status URL."
    ),
    parameters=_PARAMETERS,
    actions=(
        Action("start", 40_000),
        Action("stop", 60_000),
        # The first monitor is the one the core runs at its interval: the cheap one.
        Action("monitor", 20_000, interval_ms=10_000),
        Action("monitor", 20_000, interval_ms=60_000, depth=10),
        Action("validate-all", 5_000),
        Action("meta-data", 5_000),
    ),
    # Heartbeat's resource.d/apache took the configuration file: `apache::/etc/...conf`.
    positional=("configfile",),
)


def parameter_problem(params: Mapping[str, str]) -> str | None:
    """Why resolved parameters can never work, or None."""
    for name in ("configfile", "pidfile"):
        value = params.get(name)
        if value is not None and not Path(value).is_absolute():
            return f"{name} must be an absolute path, not '{value}'"
        if value is not None and '"' in value:
            return f"{name} must not contain a double quote"  # it goes into -c "PidFile ..."
    try:
        re.compile(params.get("testregex", DEFAULT_TESTREGEX))
    except re.error as err:
        return f"testregex is not a regular expression: {err}"
    url = params.get("statusurl")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"statusurl must be an http:// or https:// URL with a host, not '{url}'"
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError as err:
            return f"statusurl '{url}': {err}"
    port = params.get("port")
    if port is not None and not 0 < int(port) < 65536:
        return f"port must be between 1 and 65535, not {port}"
    try:
        options = shlex.split(params.get("options", ""))
    except ValueError as err:
        return f"options cannot be split into words: {err}"
    foreground = sorted(FOREGROUND_OPTIONS.intersection(options))
    if foreground:
        return f"option {foreground[0]} keeps httpd in the foreground; the agent needs it to detach"
    return None
