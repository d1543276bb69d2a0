"""hacore-apache: the ``apache`` resource agent (Debian's apache2 as a cluster resource), found
by hacore through the ``hacore.agents`` entry point, and ``write_site``, a minimal per-node
Apache site for labs and the demo."""

from __future__ import annotations

from hacore_apache.agent import Apache
from hacore_apache.conf import ApacheConfig, Listen, read_config
from hacore_apache.httpd import httpd_argv
from hacore_apache.metadata import METADATA
from hacore_apache.site import ApacheSite, SiteError, make_certificate, write_site

__version__ = "0.1.0"

__all__ = [
    "METADATA",
    "Apache",
    "ApacheConfig",
    "ApacheSite",
    "Listen",
    "SiteError",
    "__version__",
    "httpd_argv",
    "make_certificate",
    "read_config",
    "write_site",
]
