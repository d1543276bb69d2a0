"""Discovery (hacore.plugins) with real entry points: hacore's own, and distributions written to
disk for the test, found by importlib.metadata exactly as an installed third-party one would be."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from hacore import plugins
from hacore.hookspecs import hookimpl
from hacore.plugins import AgentNotFound, PluginError, load_agent, plugin_manager
from hacore.testing import Dummy

ROOT = Path(__file__).resolve().parent.parent

AGENT_MODULE = """
from hacore.testing.dummy import Dummy

class Frob(Dummy):
    metadata = Dummy.metadata
"""


@dataclass
class SitePackages:
    """A directory on sys.path into which a test installs distributions by hand."""

    path: Path
    package_prefix: str

    def install(
        self,
        name: str,
        modules: Mapping[str, str],
        entry_points: Mapping[str, Mapping[str, str]],
        version: str = "1.0",
    ) -> str:
        """Write the package ``<prefix>_<name>`` with ``modules`` (module name → source) and a
        ``<name>-<version>.dist-info`` declaring ``entry_points`` (group → name → target, with
        ``{pkg}`` standing for the package). Returns the package name."""
        package = f"{self.package_prefix}_{name.replace('-', '_')}"
        (self.path / package).mkdir()
        (self.path / package / "__init__.py").write_text("")
        for module, source in modules.items():
            (self.path / package / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.path / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        sections = [
            f"[{group}]\n"
            + "".join(f"{ep} = {target.format(pkg=package)}\n" for ep, target in eps.items())
            for group, eps in entry_points.items()
        ]
        (info / "entry_points.txt").write_text("\n".join(sections))
        return package


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SitePackages]:
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    # Unique package names: modules a test imports must not satisfy another test's import.
    prefix = f"hacore_test_{uuid.uuid4().hex[:8]}"
    yield SitePackages(path, prefix)
    for module in [m for m in sys.modules if m.startswith(prefix)]:
        del sys.modules[module]


# -------------------------------------------------------------------------------------------------
# Agents (stevedore, group hacore.agents)
# -------------------------------------------------------------------------------------------------


def test_dummy_is_found_by_name_through_hacores_own_entry_point() -> None:
    assert load_agent("Dummy") is Dummy
    assert plugins.available_agents()["Dummy"].startswith("hacore ")


def test_agent_names_are_case_sensitive_and_a_near_miss_is_suggested() -> None:
    with pytest.raises(AgentNotFound) as caught:
        load_agent("dummy")

    assert str(caught.value).startswith("unknown resource agent 'dummy' (did you mean 'Dummy'?)")
    assert "installed agents: " in str(caught.value)
    assert "Dummy" in str(caught.value).split("installed agents: ")[1]


def test_a_known_agent_that_is_not_installed_says_what_to_pip_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(plugins.KNOWN_DISTRIBUTIONS, "Frobnicator", "hacore-frob")

    with pytest.raises(
        AgentNotFound, match=r"'Frobnicator' is not installed: .*pip install hacore-frob"
    ):
        load_agent("Frobnicator")


def test_heartbeats_agents_are_attributed_to_their_distributions() -> None:
    assert plugins.KNOWN_DISTRIBUTIONS["IPaddr"] == "hacore-ipaddr"
    assert plugins.KNOWN_DISTRIBUTIONS["IPaddr2"] == "hacore-ipaddr"
    assert plugins.KNOWN_DISTRIBUTIONS["apache"] == "hacore-apache"


def test_an_unknown_name_lists_the_installed_agents() -> None:
    with pytest.raises(AgentNotFound) as caught:
        load_agent("Zzyzx")

    assert re.fullmatch(r"unknown resource agent 'Zzyzx'; installed agents: .*", str(caught.value))


def test_an_ocf_name_is_dispatched_to_the_agent_registered_for_its_prefix(
    site: SitePackages,
) -> None:
    site.install(
        "hacore-ocfbridge", {"agent": AGENT_MODULE}, {"hacore.agents": {"ocf": "{pkg}.agent:Frob"}}
    )

    assert load_agent("ocf:heartbeat:IPaddr2").__name__ == "Frob"


def test_a_prefixed_name_without_its_agent_names_the_missing_agent() -> None:
    with pytest.raises(AgentNotFound, match="needs the agent 'stonith', which is not installed"):
        load_agent("stonith:external/ipmi")


def test_a_third_party_agent_is_found_by_name(site: SitePackages) -> None:
    package = site.install(
        "hacore-frob", {"agent": AGENT_MODULE}, {"hacore.agents": {"Frob": "{pkg}.agent:Frob"}}
    )

    agent = load_agent("Frob")

    assert (agent.__module__, agent.__name__) == (f"{package}.agent", "Frob")
    assert plugins.available_agents()["Frob"] == "hacore-frob 1.0"


def test_an_agent_that_fails_to_import_is_reported_without_a_traceback(
    site: SitePackages,
) -> None:
    site.install(
        "hacore-broken",
        {"agent": "import pyroute9  # a dependency that is not installed\n"},
        {"hacore.agents": {"Broken": "{pkg}.agent:Broken"}},
    )

    with pytest.raises(AgentNotFound) as caught:
        load_agent("Broken")

    message = str(caught.value)
    assert "resource agent 'Broken'" in message
    assert "from hacore-broken 1.0" in message
    assert "cannot be loaded: ModuleNotFoundError: No module named 'pyroute9'" in message
    assert "Traceback" not in message


def test_loading_one_agent_does_not_import_the_others(site: SitePackages) -> None:
    site.install(
        "hacore-mixed",
        {"agent": AGENT_MODULE, "broken": "raise RuntimeError('never imported')\n"},
        {"hacore.agents": {"Frob": "{pkg}.agent:Frob", "Broken": "{pkg}.broken:Broken"}},
    )

    assert load_agent("Frob").__name__ == "Frob"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("{pkg}.agent:helper", "is <function helper at .*>, not a subclass of hacore.agent.Agent"),
        ("{pkg}.agent:Half", "does not implement: monitor, stop"),
        ("{pkg}.agent:Anonymous", "has no 'metadata'"),
    ],
    ids=["function", "abstract", "no-metadata"],
)
def test_an_entry_point_that_is_not_a_usable_agent_is_refused(
    site: SitePackages, target: str, reason: str
) -> None:
    source = """
    from hacore.agent import Agent, OCFResult
    from hacore.testing.dummy import Dummy

    def helper(): ...

    class Half(Agent):
        metadata = Dummy.metadata
        async def start(self): ...

    class Anonymous(Dummy):
        metadata = None
    """
    site.install("hacore-odd", {"agent": source}, {"hacore.agents": {"Odd": target}})

    with pytest.raises(AgentNotFound, match=f"resource agent 'Odd' .*{reason}"):
        load_agent("Odd")


def test_an_agent_name_claimed_by_two_distributions_is_refused(site: SitePackages) -> None:
    for name in ("hacore-frob", "hacore-frob-fork"):
        site.install(name, {"agent": AGENT_MODULE}, {"hacore.agents": {"Frob": "{pkg}.agent:Frob"}})

    with pytest.raises(AgentNotFound, match=r"several distributions \(hacore-frob.*uninstall"):
        load_agent("Frob")


def test_importing_hacore_plugins_loads_nothing() -> None:
    probe = "import sys, hacore.plugins; print(sorted(m for m in sys.modules if 'dummy' in m))"

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )

    assert done.stdout.strip() == "[]"


# -------------------------------------------------------------------------------------------------
# Hook plugins (pluggy, group hacore.plugins)
# -------------------------------------------------------------------------------------------------

SCORE_PLUGIN = """
from hacore.hookspecs import hookimpl

@hookimpl
def hacore_connectivity_score(node):
    return 3 if node == "pc1" else None
"""


def test_a_third_party_plugin_is_registered_and_its_hook_called(site: SitePackages) -> None:
    package = site.install(
        "hacore-pingish", {"plugin": SCORE_PLUGIN}, {"hacore.plugins": {"pingish": "{pkg}.plugin"}}
    )

    pm = plugin_manager()

    registered = pm.get_plugin("pingish")
    assert registered is not None
    assert registered.__name__ == f"{package}.plugin"
    assert pm.hook.hacore_connectivity_score(node="pc1") == [3]
    assert pm.hook.hacore_connectivity_score(node="pc2") == []  # None answers are left out


def test_a_misspelt_hook_fails_at_start_up_naming_the_distribution(site: SitePackages) -> None:
    misspelt = """
    from hacore.hookspecs import hookimpl

    @hookimpl
    def hacore_node_evnt(event):
        pass
    """
    site.install(
        "hacore-notify-x", {"plugin": misspelt}, {"hacore.plugins": {"notx": "{pkg}.plugin"}}
    )

    with pytest.raises(PluginError) as caught:
        plugin_manager()

    assert str(caught.value) == (
        "hacore-notify-x 1.0: plugin 'notx' implements unknown hook(s) "
        "'hacore_node_evnt' (did you mean 'hacore_node_event'?)"
    )


def test_an_optional_hook_from_a_newer_hacore_is_accepted(site: SitePackages) -> None:
    future = """
    from hacore.hookspecs import hookimpl

    @hookimpl(optionalhook=True)
    def hacore_quorum_lost(cluster):
        pass
    """
    site.install(
        "hacore-future", {"plugin": future}, {"hacore.plugins": {"future": "{pkg}.plugin"}}
    )

    assert plugin_manager().has_plugin("future")


def test_a_hook_implementation_with_an_argument_the_spec_lacks_is_refused(
    site: SitePackages,
) -> None:
    wrong = """
    from hacore.hookspecs import hookimpl

    @hookimpl
    def hacore_node_event(evnt):
        pass
    """
    site.install("hacore-wrong", {"plugin": wrong}, {"hacore.plugins": {"wrong": "{pkg}.plugin"}})

    with pytest.raises(PluginError) as caught:
        plugin_manager()

    assert str(caught.value).startswith("hacore-wrong 1.0: plugin 'wrong' (")
    assert "Argument(s) {'evnt'} are declared in the hookimpl" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_plugin_that_fails_to_import_names_its_distribution(site: SitePackages) -> None:
    site.install(
        "hacore-mailer",
        {"plugin": "import smtplibx\n"},
        {"hacore.plugins": {"mail": "{pkg}.plugin"}},
    )

    with pytest.raises(PluginError) as caught:
        plugin_manager()

    assert str(caught.value).startswith("hacore-mailer 1.0: plugin 'mail' (") and str(
        caught.value
    ).endswith("cannot be loaded: ModuleNotFoundError: No module named 'smtplibx'")


def test_a_plugin_name_claimed_by_two_distributions_is_refused(site: SitePackages) -> None:
    for name in ("hacore-a", "hacore-b"):
        site.install(name, {"plugin": SCORE_PLUGIN}, {"hacore.plugins": {"ping": "{pkg}.plugin"}})

    with pytest.raises(PluginError, match="plugin name 'ping' is registered by both hacore-"):
        plugin_manager()


def test_scores_from_several_plugins_are_all_returned_for_the_core_to_sum() -> None:
    class Link:
        @hookimpl
        def hacore_connectivity_score(self, node: str) -> int | None:
            return 1

    class Ping:
        @hookimpl
        def hacore_connectivity_score(self, node: str) -> int | None:
            return 2

    pm = plugin_manager(load_entrypoints=False, plugins=[Link(), Ping()])

    assert sum(pm.hook.hacore_connectivity_score(node="pc1")) == 3


def test_plugins_given_directly_are_checked_too() -> None:
    class Typo:
        @hookimpl
        def hacore_daemon_start(self) -> None: ...

    with pytest.raises(PluginError, match="did you mean 'hacore_daemon_started'"):
        plugin_manager(load_entrypoints=False, plugins=[Typo()])


# -------------------------------------------------------------------------------------------------
# The hook reference (docs/hooks.md) cannot go stale
# -------------------------------------------------------------------------------------------------


def _hookspec_signatures() -> dict[str, str]:
    pm = plugin_manager(load_entrypoints=False)
    out: dict[str, str] = {}
    for name in dir(pm.hook):
        caller = getattr(pm.hook, name)
        if name.startswith("_") or caller.spec is None:
            continue
        sig = inspect.signature(caller.spec.function)  # annotations stay strings: as written
        args = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
        out[name] = f"{name}({args}) -> {sig.return_annotation}"
    return out


def test_every_hook_has_a_section_in_docs_headed_by_its_signature() -> None:
    headings = re.findall(r"^### `(.+)`$", (ROOT / "docs" / "hooks.md").read_text(), re.M)
    documented = {heading.split("(")[0]: heading for heading in headings}

    signatures = _hookspec_signatures()

    assert sorted(documented) == sorted(signatures), "docs/hooks.md and hacore.hookspecs differ"
    for name, signature in signatures.items():
        assert documented[name] == signature, f"docs/hooks.md: the heading of {name} is stale"
