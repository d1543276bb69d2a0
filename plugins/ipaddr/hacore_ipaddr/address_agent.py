"""The floating-address agent both IPaddr and IPaddr2 are: what start, stop, monitor and
validate do. The concrete agents (``agents.py``) only add their metadata and the names of their
announcement parameters.

start adds the address (once: starting a started address only announces it again), brings the
link up and announces the address on the link; stop cancels the announcements and deletes
exactly that address; monitor tells held, not held, and held on a dead link apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import ClassVar, TypeVar

from hacore.agent import (
    Agent,
    AgentError,
    ConfigurationError,
    Instance,
    OCFResult,
    PrivilegeError,
)

from hacore_ipaddr.announce import Announcement, Announcer, AnnouncerPort
from hacore_ipaddr.netlink import (
    Address,
    AddressFlag,
    AddressPort,
    Link,
    NetlinkAddressPort,
    NewAddress,
)
from hacore_ipaddr.placement import Placement, PlacementError, place
from hacore_ipaddr.spec import AnnouncePolicy, VipSpec, build_spec, parse_haresources, parse_ip

log = logging.getLogger("hacore.ipaddr")

_T = TypeVar("_T")


class AddressAgent(Agent):
    """The implementation both agents share. Subclasses give the metadata and the names of
    their announcement parameters."""

    count_param: ClassVar[str]
    interval_param: ClassVar[str]
    refresh_param: ClassVar[str | None] = None

    # How long start waits for IPv6 duplicate address detection (the kernel's default takes
    # one to two seconds); resource-agents' IPaddr2 waits up to 10 s too.
    dad_timeout_s: float = 10.0
    dad_poll_s: float = 0.05

    def __init__(
        self,
        instance: Instance,
        *,
        port: AddressPort | None = None,
        announcer: AnnouncerPort | None = None,
    ) -> None:
        super().__init__(instance)
        self.port: AddressPort = port if port is not None else NetlinkAddressPort()
        self.announcer: AnnouncerPort = announcer if announcer is not None else Announcer()
        self._spec: VipSpec | None = None

    # -- configuration ----------------------------------------------------------------------

    @classmethod
    def parse_args(cls, args: Sequence[str]) -> dict[str, str]:
        return parse_haresources(cls.metadata.name, args)

    @classmethod
    def instance_name(cls, params: Mapping[str, str]) -> str:
        """The OCF instance name Heartbeat's wrapper used: ``IPaddr2_192.168.10.55``."""
        ip = params.get("ip", "")
        # Naming must not fail: a bad address is reported by the actions, with its reason.
        with contextlib.suppress(ConfigurationError):
            ip = str(parse_ip(ip))
        return f"{cls.metadata.name}_{ip}"

    @property
    def spec(self) -> VipSpec:
        """The checked parameters; raises ConfigurationError naming the first problem."""
        if self._spec is None:
            if not self.params.get("ip"):
                raise ConfigurationError(f"{self.metadata.name}: parameter 'ip' is required")
            policy = AnnouncePolicy(
                count=self._int_param(self.count_param),
                interval_ms=self._int_param(self.interval_param),
                refresh=self._int_param(self.refresh_param) if self.refresh_param else 0,
            )
            self._spec = build_spec(self.params, policy)
        return self._spec

    def _int_param(self, name: str) -> int:
        declared = self.metadata.parameter(name)
        value = self.params.get(name) or (declared.default if declared else None) or "0"
        try:
            return int(value)
        except ValueError:
            raise ConfigurationError(
                f"{self.metadata.name}: parameter '{name}' must be an integer, not '{value}'"
            ) from None

    # -- actions ----------------------------------------------------------------------------

    async def validate(self) -> None:
        await self._place(self.spec)

    async def start(self) -> None:
        spec = self.spec
        where = await self._place(spec)
        link, held = where.link, await self._held_on(where.link, spec)
        if spec.label is not None and spec.version == 6:
            log.warning("%s: iflabel is ignored: IPv6 addresses have no labels", spec.ip)
        if held is None:
            await self._add(where, spec)
        else:
            log.info("%s is already on %s; announcing it again", held.interface, link.name)
        if not link.admin_up:
            await self._kernel(self.port.set_link_up(link.index), f"cannot bring {link.name} up")
        if spec.version == 6 and not spec.nodad and not await self._settle_dad(link, spec):
            return
        await self._announce(link, spec, spec.announce.count)

    async def stop(self) -> None:
        spec = self.spec
        # First, so that no announcement claims the address once it is gone.
        await self.announcer.cancel()
        found = await self._find(spec)
        if found is None:
            return
        link, held = found
        if held.interface.version == 4 and not held.flags & AddressFlag.SECONDARY:
            await self._keep_secondaries(link)
        try:
            await self.port.delete_address(link.index, held.interface)
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:  # gone meanwhile: what stop wants
                return
            raise self._error(err, f"cannot delete {held.interface} from {link.name}") from None
        log.info("deleted %s from %s", held.interface, link.name)

    async def monitor(self, depth: int = 0) -> OCFResult:
        spec = self.spec
        found = await self._find(spec)
        if found is None:
            return OCFResult.NOT_RUNNING
        link, held = found
        if not link.running:
            raise AgentError(
                f"{spec.ip} is on {link.name} but the link is down "
                f"({'administratively down' if not link.admin_up else link.operstate.lower()})"
            )
        # Tentative is not a failure: after a link flap IPv6 runs detection again for a second
        # or two. A failed detection is, and only the deeper check looks for it, as asked.
        if depth >= 10 and held.flags & AddressFlag.DADFAILED:
            raise AgentError(_dad_failed(spec, link))
        if spec.announce.refresh > 0:
            await self._announce(link, spec, spec.announce.refresh)
        return OCFResult.SUCCESS

    # -- steps ------------------------------------------------------------------------------

    async def _place(self, spec: VipSpec) -> Placement:
        """Where start puts the address; ConfigurationError if it cannot be placed."""
        if spec.nic is not None:
            link = await self._kernel(self.port.link(spec.nic), f"cannot look up {spec.nic}")
            links = [link] if link is not None else []
        else:
            links = await self._kernel(self.port.links(), "cannot list interfaces")
        routes = []
        if links and (spec.nic is None or spec.prefixlen is None):
            routes = await self._kernel(self.port.routes(spec.version), "cannot list routes")
        try:
            return place(spec, links, routes)
        except PlacementError as err:
            raise ConfigurationError(f"{self.metadata.name} {spec.ip}: {err}") from None

    async def _find(self, spec: VipSpec) -> tuple[Link, Address] | None:
        """Where the address is held now, for monitor and stop.

        With ``nic`` configured only that link counts, as in IPaddr2. Without, the address is
        looked for on every link rather than where the routes say it belongs: routes vanish
        when a link goes down, and stop must still find the address then."""
        if spec.nic is not None:
            link = await self._kernel(self.port.link(spec.nic), f"cannot look up {spec.nic}")
            if link is None:
                return None
            held = await self._held_on(link, spec)
            return (link, held) if held is not None else None
        addresses = await self._kernel(self.port.addresses(), "cannot list addresses")
        matches = [a for a in addresses if a.ip == spec.ip]
        if not matches:
            return None
        links = {
            link.index: link
            for link in await self._kernel(self.port.links(), "cannot list interfaces")
        }
        matches = [a for a in matches if a.index in links]
        if not matches:
            return None
        chosen = matches[0]
        if len(matches) > 1:
            names = ", ".join(links[a.index].name for a in matches)
            log.warning(
                "%s is on several interfaces (%s); acting on %s",
                spec.ip,
                names,
                links[chosen.index].name,
            )
        return links[chosen.index], chosen

    async def _held_on(self, link: Link, spec: VipSpec) -> Address | None:
        addresses = await self._kernel(
            self.port.addresses(link.index), f"cannot list the addresses of {link.name}"
        )
        return next((a for a in addresses if a.ip == spec.ip), None)

    async def _add(self, where: Placement, spec: VipSpec) -> None:
        new = NewAddress(
            index=where.link.index,
            interface=where.interface,
            label=where.label,
            broadcast=where.broadcast,
            nodad=spec.nodad,
            noprefixroute=spec.noprefixroute,
            preferred_lft=spec.preferred_lft if spec.version == 6 else None,
        )
        try:
            await self.port.add_address(new)
        except OSError as err:
            # Added meanwhile by someone else (another start racing this one): held is held.
            if err.errno == errno.EEXIST and await self._held_on(where.link, spec) is not None:
                log.info("%s appeared on %s meanwhile", spec.ip, where.link.name)
                return
            raise self._error(err, f"cannot add {where.interface} to {where.link.name}") from None
        log.info(
            "added %s to %s%s",
            where.interface,
            where.link.name,
            f" as {where.label}" if where.label else "",
        )

    async def _settle_dad(self, link: Link, spec: VipSpec) -> bool:
        """Wait for IPv6 duplicate address detection. False if it is still running at the
        deadline (the address must not be announced while tentative, RFC 4862 5.4)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.dad_timeout_s
        while True:
            held = await self._held_on(link, spec)
            if held is None:
                raise AgentError(
                    f"{spec.ip} vanished from {link.name} during duplicate address detection"
                )
            if held.flags & AddressFlag.DADFAILED:
                try:
                    await self.port.delete_address(link.index, held.interface)
                except OSError as err:
                    log.warning(
                        "cannot delete duplicate %s from %s: %s",
                        held.interface,
                        link.name,
                        err.strerror,
                    )
                raise AgentError(_dad_failed(spec, link))
            if not held.flags & AddressFlag.TENTATIVE:
                return True
            if loop.time() >= deadline:
                log.warning(
                    "%s on %s is still tentative after %g s of duplicate address "
                    "detection; not announcing it",
                    spec.ip,
                    link.name,
                    self.dad_timeout_s,
                )
                return False
            await asyncio.sleep(self.dad_poll_s)

    async def _announce(self, link: Link, spec: VipSpec, count: int) -> None:
        if not link.ethernet:
            log.debug("%s: no announcements on %s (not an Ethernet link)", spec.ip, link.name)
            return
        what = Announcement(ifname=link.name, ifindex=link.index, mac=link.mac, ip=spec.ip)
        await self.announcer.announce(what, count, spec.announce.interval_ms)

    async def _keep_secondaries(self, link: Link) -> None:
        try:
            if await self.port.promote_secondaries(link.name):
                log.info(
                    "enabled net.ipv4.conf.%s.promote_secondaries, so that deleting a "
                    "primary address keeps the subnet's other addresses",
                    link.name,
                )
        except OSError as err:
            log.warning(
                "cannot enable net.ipv4.conf.%s.promote_secondaries (%s): deleting a "
                "primary address also deletes its subnet's other addresses",
                link.name,
                err.strerror,
            )

    async def _kernel(self, request: Awaitable[_T], what: str) -> _T:
        try:
            return await request
        except OSError as err:
            raise self._error(err, what) from None

    @staticmethod
    def _error(err: OSError, what: str) -> AgentError:
        if err.errno in (errno.EPERM, errno.EACCES):
            return PrivilegeError(f"{what}: {err.strerror} (hacore needs CAP_NET_ADMIN)")
        return AgentError(f"{what}: {err.strerror}")


def _dad_failed(spec: VipSpec, link: Link) -> str:
    return (
        f"duplicate address detection failed for {spec.ip} on {link.name}: another host "
        "on the link already uses it"
    )
