"""hacore-ipaddr: the IPaddr and IPaddr2 resource agents (a floating IP address), found by
hacore through the ``hacore.agents`` entry points."""

from __future__ import annotations

from hacore_ipaddr.address_agent import AddressAgent
from hacore_ipaddr.agents import IPaddr, IPaddr2
from hacore_ipaddr.announce import Announcement, Announcer, AnnouncerPort
from hacore_ipaddr.netlink import AddressPort, NetlinkAddressPort
from hacore_ipaddr.spec import parse_haresources

__version__ = "0.1.0"

__all__ = [
    "AddressAgent",
    "AddressPort",
    "Announcement",
    "Announcer",
    "AnnouncerPort",
    "IPaddr",
    "IPaddr2",
    "NetlinkAddressPort",
    "__version__",
    "parse_haresources",
]
