"""A minimal Apache site for one node, all under one directory: what labs and the demo run.

Two nodes of a test cluster run side by side on one machine, each in its own network namespace
but on one file system, so each needs its own configuration, pid file, logs, run and lock
directories. ``write_site`` writes them, Debian-style (the configuration takes its paths from an
envvars file, as /etc/apache2/apache2.conf does from /etc/apache2/envvars):

    <root>/apache2.conf   the configuration: mpm_event, mod_status, mod_ssl, the node's page
    <root>/envvars        APACHE_RUN_USER, APACHE_RUN_DIR, APACHE_LOCK_DIR, APACHE_LOG_DIR ...
    <root>/htdocs/        index.html and node.txt, naming the node
    <root>/tls/           a self-signed certificate and its key (made with openssl)
    <root>/run/           DefaultRuntimeDir and the pid file
    <root>/lock/          mutex files (owned by the run user)
    <root>/logs/          error.log, access.log

``ApacheSite.agent_params()`` gives the apache agent's parameters for it. Writing is blocking
(it runs openssl): call it from a thread in asynchronous code.
"""

from __future__ import annotations

import grp
import html
import ipaddress
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ApacheSite", "SiteError", "make_certificate", "write_site"]

DEBIAN_MODULES = Path("/usr/lib/apache2/modules")
_MODULES = (
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_host_module", "mod_authz_host.so"),
    ("dir_module", "mod_dir.so"),
    ("mime_module", "mod_mime.so"),
    ("status_module", "mod_status.so"),
)
_SSL_MODULES = (("socache_shmcb_module", "mod_socache_shmcb.so"), ("ssl_module", "mod_ssl.so"))
# Paths and names go into httpd's configuration and a shell file unquoted-safe: keep them plain.
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./@+-]+")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_OPENSSL_TIMEOUT = 30.0


class SiteError(Exception):
    """The site cannot be written as asked; the message says what to change."""


@dataclass(frozen=True)
class ApacheSite:
    """A written site. ``address`` is the one address it listens on (None: every address)."""

    root: Path
    node: str
    address: str | None
    http_port: int | None
    https_port: int | None

    @property
    def config(self) -> Path:
        return self.root / "apache2.conf"

    @property
    def envvars(self) -> Path:
        return self.root / "envvars"

    @property
    def docroot(self) -> Path:
        return self.root / "htdocs"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def lock_dir(self) -> Path:
        return self.root / "lock"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "apache2.pid"

    @property
    def error_log(self) -> Path:
        return self.log_dir / "error.log"

    @property
    def access_log(self) -> Path:
        return self.log_dir / "access.log"

    @property
    def cert(self) -> Path:
        return self.root / "tls" / "cert.pem"

    @property
    def key(self) -> Path:
        return self.root / "tls" / "key.pem"

    def url(self, scheme: str = "https", host: str | None = None, path: str = "/") -> str:
        """The site's URL as a client reaches it at ``host`` (default: its address, else
        loopback)."""
        port = self.https_port if scheme == "https" else self.http_port
        if port is None:
            raise SiteError(f"the site of {self.node} does not serve {scheme}")
        where = host or self.address or "127.0.0.1"
        if ":" in where:
            where = f"[{where}]"
        default = 443 if scheme == "https" else 80
        return f"{scheme}://{where}{'' if port == default else f':{port}'}{path}"

    @property
    def status_url(self) -> str:
        """mod_status's page, over plain HTTP when the site has it (cheaper for a monitor)."""
        return self.url("http" if self.http_port is not None else "https", path="/server-status")

    def agent_params(self) -> dict[str, str]:
        """The apache agent's parameters for this site."""
        return {
            "configfile": str(self.config),
            "envfiles": str(self.envvars),
            "statusurl": self.status_url,
        }


def write_site(
    root: Path,
    node: str,
    *,
    address: str | None = None,
    http_port: int | None = 80,
    https_port: int | None = 443,
    user: str = "www-data",
    group: str = "www-data",
    certificate: tuple[Path, Path] | None = None,
    modules: Path = DEBIAN_MODULES,
    openssl: str = "openssl",
) -> ApacheSite:
    """Write a site for ``node`` under ``root`` (created if missing, made 0755) and return it.

    It listens on ``address`` (a virtual IP, say; None: every address) on ``http_port`` and,
    with TLS, on ``https_port`` (None: not at all). ``certificate`` is a (cert, key) pair to
    copy, so that every node serves the same one as real clusters do; by default a new
    self-signed one is made for ``node``, ``address`` and localhost. The children run as
    ``user``/``group``, who must be able to reach ``root``: SiteError says which directory
    above it they cannot enter.
    """
    site = ApacheSite(root, node, _address(address), http_port, https_port)
    _check(site, user, group)
    run_user = pwd.getpwnam(user)
    _check_reachable(root, run_user, group)  # before creating anything
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    root.chmod(0o755)
    _check_reachable(root, run_user, group)  # and the directories just made, under the umask
    for directory in (site.docroot, site.run_dir, site.log_dir, site.lock_dir, site.cert.parent):
        directory.mkdir(mode=0o755, exist_ok=True)
    site.cert.parent.chmod(0o700)  # the key is for the (root) master only
    if os.geteuid() == 0:
        os.chown(site.lock_dir, run_user.pw_uid, grp.getgrnam(group).gr_gid)
    _write(site.docroot / "index.html", _page(node), 0o644)
    _write(site.docroot / "node.txt", f"{node}\n", 0o644)
    if https_port is not None:
        if certificate is not None:
            shutil.copyfile(certificate[0], site.cert)
            shutil.copyfile(certificate[1], site.key)
            site.key.chmod(0o600)
        else:
            names = [node, "localhost", "127.0.0.1", *([site.address] if site.address else [])]
            make_certificate(site.cert, site.key, names, openssl=openssl)
    _write(site.envvars, _envvars(site, user, group), 0o644)
    _write(site.config, _config(site, modules, _variables(site, user, group)), 0o644)
    return site


def make_certificate(
    cert: Path, key: Path, names: Sequence[str], *, days: int = 30, openssl: str = "openssl"
) -> None:
    """A self-signed certificate for ``names`` (the first is its CN; addresses become IP
    subject alternative names), with a new P-256 key: generated in milliseconds, where RSA
    takes half a second."""
    if not names:
        raise SiteError("a certificate needs at least one name")
    alt = ",".join(f"{'IP' if _is_ip(name) else 'DNS'}:{name}" for name in names)
    argv = [
        openssl,
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
        *("-nodes", "-days", str(days), "-subj", f"/CN={names[0]}"),
        *("-addext", f"subjectAltName={alt}"),
        # A server certificate, not the CA one `req -x509` makes by default (mod_ssl warns).
        *("-addext", "basicConstraints=critical,CA:FALSE"),
        *("-addext", "extendedKeyUsage=serverAuth"),
        *("-keyout", str(key), "-out", str(cert)),
    ]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_OPENSSL_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise SiteError(f"{openssl} not found: install it with `apt-get install openssl`") from None
    if done.returncode != 0:
        raise SiteError(f"openssl could not make a certificate: {done.stderr.strip()}")
    key.chmod(0o600)


def _address(address: str | None) -> str | None:
    if address is None:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise SiteError(f"address {address!r} is not an IP address") from None


def _check(site: ApacheSite, user: str, group: str) -> None:
    if not _SAFE_NAME.fullmatch(site.node):
        raise SiteError(f"node name {site.node!r}: use letters, digits, '.', '_' and '-'")
    if not site.root.is_absolute() or not _SAFE_PATH.fullmatch(str(site.root)):
        raise SiteError(
            f"site directory {site.root}: use an absolute path of letters, digits and ./@+-_"
        )
    if site.http_port is None and site.https_port is None:
        raise SiteError("a site needs http_port, https_port or both")
    for port in (site.http_port, site.https_port):
        if port is not None and not 0 < port < 65536:
            raise SiteError(f"port {port} is not between 1 and 65535")
    if site.http_port == site.https_port:
        raise SiteError("http_port and https_port must differ")
    try:
        pwd.getpwnam(user)
        grp.getgrnam(group)
    except KeyError as err:
        raise SiteError(f"no such user or group on this machine: {err.args[0]}") from None


def _check_reachable(root: Path, user: pwd.struct_passwd, group: str) -> None:
    """The children (``user``) must enter every directory down to the document root."""
    gids = {grp.getgrnam(group).gr_gid, user.pw_gid}
    gids |= {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    for directory in [root, *root.parents]:
        if not directory.exists():
            continue
        st = directory.stat()
        if st.st_uid == user.pw_uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in gids:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise SiteError(
                f"{user.pw_name} cannot enter {directory} (mode "
                f"{stat.S_IMODE(st.st_mode):04o}), so apache could not serve {root}/htdocs: "
                "put the site under a directory others may enter (/srv, or a new one in /tmp)"
            )


def _write(path: Path, text: str, mode: int) -> None:
    path.write_text(text)
    path.chmod(mode)


def _page(node: str) -> str:
    name = html.escape(node)
    return (
        "<!DOCTYPE html>\n<html><head><title>hacore: "
        f"{name}</title></head>\n<body><h1>Served by {name}</h1></body></html>\n"
    )


def _variables(site: ApacheSite, user: str, group: str) -> dict[str, str]:
    return {
        "APACHE_RUN_USER": user,
        "APACHE_RUN_GROUP": group,
        "APACHE_PID_FILE": str(site.pid_file),
        "APACHE_RUN_DIR": str(site.run_dir),
        "APACHE_LOCK_DIR": str(site.lock_dir),
        "APACHE_LOG_DIR": str(site.log_dir),
        "LANG": "C",
    }


def _envvars(site: ApacheSite, user: str, group: str) -> str:
    values = _variables(site, user, group)
    lines = [f"# envvars of {site.node}'s apache, as Debian's /etc/apache2/envvars (written by"]
    lines.append("# hacore_apache.site); the apache agent sources it (parameter envfiles).")
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def _listen(site: ApacheSite, port: int) -> str:
    if site.address is None:
        return str(port)
    host = f"[{site.address}]" if ":" in site.address else site.address
    return f"{host}:{port}"


def _config(site: ApacheSite, modules: Path, variables: dict[str, str]) -> str:
    loads = [*_MODULES, *(_SSL_MODULES if site.https_port is not None else ())]
    out = [
        f"# Apache configuration of node {site.node}, written by hacore_apache.site. Paths come",
        f"# from {site.envvars} (the apache agent sources it), as Debian's do from envvars.",
        "# They are also defined here, so that the file stands on its own: a haresources line",
        "# (apache::<this file>) can name only the configuration, and the default envvars of",
        "# the machine must not send two nodes' apaches to the same pid file.",
        *(f'Define {name} "{value}"' for name, value in variables.items() if name != "LANG"),
        f"ServerRoot {site.root}",
        f"ServerName {site.node}",
        "DefaultRuntimeDir ${APACHE_RUN_DIR}",
        "PidFile ${APACHE_PID_FILE}",
        "Mutex file:${APACHE_LOCK_DIR} default",
        "User ${APACHE_RUN_USER}",
        "Group ${APACHE_RUN_GROUP}",
        "ErrorLog ${APACHE_LOG_DIR}/error.log",
        "LogLevel warn",
        'LogFormat "%h %l %u %t \\"%r\\" %>s %O" common',
        "CustomLog ${APACHE_LOG_DIR}/access.log common",
        "",
        *(f"LoadModule {name} {modules / file}" for name, file in loads),
        "TypesConfig /etc/mime.types",
        "",
        "# Small: two nodes and a client share a small machine. One child of 16 threads",
        "# serves a demo; ServerLimit leaves room for a graceful restart.",
        "StartServers 1",
        "ServerLimit 2",
        "ThreadsPerChild 16",
        "MaxRequestWorkers 32",
        "MinSpareThreads 4",
        "MaxSpareThreads 32",
        "Timeout 30",
        "KeepAlive On",
        "KeepAliveTimeout 5",
        "# A graceful stop (the agent's first step) waits for requests in flight, but not for",
        "# ever: a stuck client must not hold up a planned move.",
        "GracefulShutdownTimeout 5",
        "",
    ]
    if site.http_port is not None:
        out.append(f"Listen {_listen(site, site.http_port)}")
    if site.https_port is not None:
        out.append(f"Listen {_listen(site, site.https_port)} https")
    out += [
        "",
        f"DocumentRoot {site.docroot}",
        "DirectoryIndex index.html",
        "<Directory />",
        "    AllowOverride None",
        "    Require all denied",
        "</Directory>",
        f"<Directory {site.docroot}>",
        "    Require all granted",
        "</Directory>",
        "# The apache agent's status URL (monitor depth 10); from this node only.",
        "<Location /server-status>",
        "    SetHandler server-status",
        "    Require local",
        "</Location>",
    ]
    if site.https_port is not None:
        vhost = _listen(site, site.https_port) if site.address else f"*:{site.https_port}"
        out += [
            "",
            "# As Debian's ssl.conf: TLS sessions resumed across the children.",
            "SSLSessionCache shmcb:${APACHE_RUN_DIR}/ssl_scache(512000)",
            f"<VirtualHost {vhost}>",
            f"    ServerName {site.node}",
            "    SSLEngine on",
            f"    SSLCertificateFile {site.cert}",
            f"    SSLCertificateKeyFile {site.key}",
            "</VirtualHost>",
        ]
    return "\n".join(out) + "\n"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
