"""write_site: a per-node site that httpd accepts and the agent reads right, without running it."""

from __future__ import annotations

import asyncio
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from apache_lab import SiteFactory
from hacore.agent import Instance

from hacore_apache.agent import Apache
from hacore_apache.conf import Listen, read_config
from hacore_apache.environment import source_envfiles
from hacore_apache.site import ApacheSite, SiteError, write_site

needs_apache = pytest.mark.skipif(
    shutil.which("apache2", path="/usr/sbin:/usr/bin") is None or shutil.which("openssl") is None,
    reason="needs Debian's apache2 and openssl",
)


def certificate_text(site: ApacheSite) -> str:
    done = subprocess.run(
        ["openssl", "x509", "-in", str(site.cert), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return done.stdout


@needs_apache
def test_the_site_is_laid_out_under_its_directory(sites: SiteFactory) -> None:
    site = sites("pc1")
    root = site.root
    assert site.config == root / "apache2.conf"
    assert (site.docroot / "index.html").read_text().count("Served by pc1") == 1
    assert (site.docroot / "node.txt").read_text() == "pc1\n"
    for directory in (root, site.docroot, site.run_dir, site.log_dir, site.lock_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    assert stat.S_IMODE(site.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(site.key.parent.stat().st_mode) == 0o700
    envvars = site.envvars.read_text()
    assert f"export APACHE_RUN_DIR={site.run_dir}\n" in envvars
    assert f"export APACHE_PID_FILE={site.pid_file}\n" in envvars


@needs_apache
def test_httpd_accepts_the_configuration(sites: SiteFactory) -> None:
    site = sites("pc1", address="198.51.100.100")
    # The agent's validate runs `apache2 -t` with the site's envvars, as start would.
    apache = Apache(Instance("apache", Apache.resolve(site.agent_params())))
    asyncio.run(apache.validate())


@needs_apache
def test_the_agent_reads_the_site_as_httpd_will(sites: SiteFactory) -> None:
    site = sites("pc1", address="2001:db8::100", http_port=8080, https_port=8443)
    env = asyncio.run(source_envfiles([site.envvars], {"PATH": "/usr/bin:/bin"}))
    config = read_config(site.config, env)
    assert config.pid_file == site.pid_file
    assert config.error_log == site.error_log
    assert config.listens == (
        Listen("2001:db8::100", 8080),
        Listen("2001:db8::100", 8443, "https"),
    )
    assert config.status_url() == site.status_url == "http://[2001:db8::100]:8080/server-status"
    assert site.url("https") == "https://[2001:db8::100]:8443/"


@needs_apache
def test_the_certificate_names_the_node_and_is_no_ca(sites: SiteFactory) -> None:
    text = certificate_text(sites("pc1", address="198.51.100.100"))
    assert "Subject: CN = pc1" in text
    assert "DNS:pc1, DNS:localhost, IP Address:127.0.0.1, IP Address:198.51.100.100" in text
    assert "CA:FALSE" in text
    assert "ASN1 OID: prime256v1" in text


@needs_apache
def test_nodes_can_share_one_certificate(sites: SiteFactory) -> None:
    pc1 = sites("pc1")
    pc2 = sites("pc2", certificate=(pc1.cert, pc1.key))
    assert pc2.cert.read_bytes() == pc1.cert.read_bytes()
    assert pc2.key.read_bytes() == pc1.key.read_bytes()
    assert stat.S_IMODE(pc2.key.stat().st_mode) == 0o600


@needs_apache
def test_an_http_only_site_loads_no_tls(sites: SiteFactory) -> None:
    site = sites("pc1", https_port=None)
    text = site.config.read_text()
    assert "mod_ssl" not in text
    assert not site.cert.exists()
    assert site.status_url == "http://127.0.0.1/server-status"
    with pytest.raises(SiteError, match="does not serve https"):
        site.url("https")


def test_a_directory_www_data_cannot_enter_is_refused(tmp_path: Path) -> None:
    # pytest's own tmp_path lives under /tmp/pytest-of-<user>, mode 0700.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(SiteError, match=rf"www-data cannot enter {private} \(mode 0700\)"):
        write_site(private / "pc1", "pc1")
    assert not (private / "pc1").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("node", "options", "problem"),
    [
        ("pc 1", {}, "node name 'pc 1'"),
        ("pc1", {"address": "pc1.example"}, "not an IP address"),
        ("pc1", {"http_port": None, "https_port": None}, "needs http_port, https_port or both"),
        ("pc1", {"http_port": 443}, "must differ"),
        ("pc1", {"https_port": 0}, "port 0 is not between"),
        ("pc1", {"user": "no-such-user-here"}, "no such user or group"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(
    tmp_path: Path, node: str, options: dict[str, object], problem: str
) -> None:
    with pytest.raises(SiteError, match=problem):
        write_site(tmp_path / "site", node, **options)  # type: ignore[arg-type]


def test_paths_httpd_would_misread_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="absolute path of letters"):
        write_site(tmp_path / "my site", "pc1")
    with pytest.raises(SiteError, match="absolute path"):
        write_site(Path("relative/site"), "pc1")
