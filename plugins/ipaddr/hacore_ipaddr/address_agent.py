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
        # Where start puts the address, looked up ahead (by the start-up probe, validate, or
        # the previous start) so that a failover's start is one RTM_NEWADDR and the ARP. It
        # can go stale while the node waits: start checks it against the kernel right after
        # announcing, off the clients' path, and repairs what changed.
        self._placement: Placement | None = None
        # What our own start added (with its flags as the kernel reported them), so that stop
        # deletes it in one request instead of looking for it first.
        self._added: tuple[Link, Address] | None = None

    # -- configuration ----------------------------------------------------------------------

    @classmethod
    def parse_args(cls, args: Sequence[str]) -> dict[str, str]:
        # No argument: cluster.toml gives the parameters by name (ip, cidr_netmask, nic ...).
        return parse_haresources(cls.metadata.name, args) if args else {}

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
        self._placement = await self._place(self.spec)

    async def start(self) -> None:
        spec = self.spec
        if spec.label is not None and spec.version == 6:
            log.warning("%s: iflabel is ignored: IPv6 addresses have no labels", spec.ip)
        self._added = None
        # An IPv6 prefix route does not say which address made it, so after the add the
        # recheck could not tell the subnet's own route from ours: IPv6 uses a cached
        # placement only when it comes from the parameters alone.
        from_params = spec.nic is not None and spec.prefixlen is not None
        cached = self._placement if spec.version == 4 or from_params else None
        where = None
        if cached is not None and await self._add(cached, spec, cached=True):
            where = cached
        if where is None:
            where = self._placement = await self._place(spec)
            await self._add(where, spec)
        announced = False
        if where is cached:
            if where.link.admin_up and (spec.version == 4 or spec.nodad):
                # The address answers now: tell the link before anything else.
                await self._announce(where.link, spec, spec.announce.count)
                announced = True
            where = await self._recheck(where, spec)
            announced = announced and _key(where) == _key(cached)
        link = where.link
        if not link.admin_up:
            await self._kernel(self.port.set_link_up(link.index), f"cannot bring {link.name} up")
            announced = False
        if spec.version == 6 and not spec.nodad and not await self._settle_dad(link, spec):
            return
        if not announced:
            await self._announce(link, spec, spec.announce.count)
        held = await self._held_on(link, spec)
        self._added = (link, held) if held is not None else None

    async def stop(self) -> None:
        spec = self.spec
        # First, so that no announcement claims the address once it is gone.
        await self.announcer.cancel()
        added, self._added = self._added, None
        if added is not None and await self._delete(*added, missing_ok=True):
            return
        found = await self._find(spec)
        if found is not None:
            await self._delete(*found, missing_ok=False)

    async def monitor(self, depth: int = 0) -> OCFResult:
        spec = self.spec
        if self._placement is None:
            # The start-up probe: look up where a start would put the address while nothing
            # hurries. A placement problem is start's and validate's to report, not monitor's.
            with contextlib.suppress(AgentError):
                self._placement = await self._place(spec)
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

    async def close(self) -> None:
        """Release what the agent keeps between actions (its netlink socket); run it on the
        loop its actions ran on. The agent stays usable: the next action opens a new one."""
        await self.announcer.cancel()
        close = getattr(self.port, "close", None)
        if close is not None:
            close()

    # -- steps ------------------------------------------------------------------------------

    async def _place(self, spec: VipSpec, *, added: bool = False) -> Placement:
        """Where start puts the address; ConfigurationError if it cannot be placed. With
        ``added``, the address is there already: the route its adding made does not count."""
        if spec.nic is not None:
            link = await self._kernel(self.port.link(spec.nic), f"cannot look up {spec.nic}")
            links = [link] if link is not None else []
        else:
            links = await self._kernel(self.port.links(), "cannot list interfaces")
        routes = []
        if links and (spec.nic is None or spec.prefixlen is None):
            routes = await self._kernel(self.port.routes(spec.version), "cannot list routes")
            if added:
                routes = [r for r in routes if r.source != spec.ip]
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

    async def _add(self, where: Placement, spec: VipSpec, *, cached: bool = False) -> bool:
        """Add the address where placed; True once it is there (added now, or held already).
        With a ``cached`` placement, False if its link is gone (a fresh one is needed)."""
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
            if cached and err.errno == errno.ENODEV:
                return False
            # Held already (started twice), or added meanwhile by someone else racing this
            # start: held is held, and start announces it again.
            if err.errno == errno.EEXIST and await self._held_on(where.link, spec) is not None:
                log.info("%s is already on %s; announcing it again", spec.ip, where.link.name)
                return True
            raise self._error(err, f"cannot add {where.interface} to {where.link.name}") from None
        log.info(
            "added %s to %s%s",
            where.interface,
            where.link.name,
            f" as {where.label}" if where.label else "",
        )
        return True

    async def _recheck(self, used: Placement, spec: VipSpec) -> Placement:
        """Check a cached placement that start used against the kernel now; if the address
        belongs elsewhere by now (the link was replaced, the subnet moved), move it there.
        Returns the fresh placement."""
        fresh = self._placement = await self._place(spec, added=True)
        if _site(fresh) != _site(used):
            log.warning(
                "%s: where it belongs changed since it was looked up (%s, now %s); moving it",
                spec.ip,
                _describe(used),
                _describe(fresh),
            )
            held = await self._held_on(used.link, spec)
            if held is not None:
                await self._delete(used.link, held, missing_ok=True)
            await self._add(fresh, spec)
        return fresh

    async def _delete(self, link: Link, held: Address, *, missing_ok: bool) -> bool:
        """Delete ``held`` from ``link``; False if it was not there (only with ``missing_ok``:
        the caller looks for it elsewhere), True once it is gone."""
        if held.interface.version == 4 and not held.flags & AddressFlag.SECONDARY:
            await self._keep_secondaries(link)
        try:
            await self.port.delete_address(link.index, held.interface)
        except OSError as err:
            if err.errno in (errno.EADDRNOTAVAIL, errno.ENODEV):
                # Gone meanwhile, or its link is: what stop wants, unless it is elsewhere.
                return not missing_ok
            raise self._error(err, f"cannot delete {held.interface} from {link.name}") from None
        log.info("deleted %s from %s", held.interface, link.name)
        return True

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


def _key(where: Placement) -> tuple[object, ...]:
    """Everything an announcement depends on: the site, and the link's name and MAC."""
    return (*_site(where), where.link.name, where.link.mac)


def _site(where: Placement) -> tuple[object, ...]:
    """Where the address is, as the kernel holds it: link index, prefix, broadcast, label."""
    return (where.link.index, where.interface, where.broadcast, where.label)


def _describe(where: Placement) -> str:
    return f"{where.interface} on {where.link.name} (index {where.link.index})"
