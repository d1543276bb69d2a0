"""haresources is read as Heartbeat's ResourceManager reads it (reference section 1.4)."""

from __future__ import annotations

from pathlib import Path

from hacore.config.errors import Problem, Severity
from hacore.config.haresources import check_groups, read_haresources
from hacore.config.model import Group, Location, Resource


def read(tmp_path: Path, text: str) -> tuple[tuple[Group, ...], list[Problem]]:
    path = tmp_path / "haresources"
    path.write_text(text)
    return read_haresources(path)


def specs(groups: tuple[Group, ...]) -> list[tuple[str, list[str]]]:
    return [(g.preferred_node, [r.spec for r in g.resources]) for g in groups]


def messages(problems: list[Problem]) -> list[tuple[int, str, Severity]]:
    return [(p.location.line, p.message, p.severity) for p in problems]


def test_each_line_is_a_group_started_left_to_right(tmp_path: Path) -> None:
    groups, problems = read(tmp_path, "pc1 IPaddr::192.168.10.55/24/eth0 apache\npc2 mysql\n")
    assert problems == []
    assert specs(groups) == [
        ("pc1", ["IPaddr::192.168.10.55/24/eth0", "apache"]),
        ("pc2", ["mysql"]),
    ]


def test_group_key_is_the_first_resource(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "pc1 IPaddr::192.168.10.55/24/eth0 apache\n")
    assert groups[0].key == "IPaddr::192.168.10.55/24/eth0"


def test_agent_arguments_are_split_on_double_colons(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "pc1 Filesystem::/dev/sda1::/data1::ext2\n")
    assert groups[0].resources[0] == Resource("Filesystem", ("/dev/sda1", "/data1", "ext2"))


def test_bare_ip_address_means_ipaddr(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "pc1 192.168.10.55 10.0.0.1/24/eth0 httpd\n")
    assert specs(groups) == [
        ("pc1", ["IPaddr::192.168.10.55", "IPaddr::10.0.0.1/24/eth0", "httpd"])
    ]


def test_preferred_node_is_lower_cased(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "PC1 apache\n")
    assert groups[0].preferred_node == "pc1"


def test_comments_anywhere_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "# groups\n\npc1 apache # the web server\n   # more\n")
    assert specs(groups) == [("pc1", ["apache"])]


def test_white_space_is_collapsed(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "  pc1 \t apache\t\tmysql   \n")
    assert specs(groups) == [("pc1", ["apache", "mysql"])]


def test_trailing_backslash_continues_the_line(tmp_path: Path) -> None:
    groups, problems = read(tmp_path, "pc1 IPaddr::10.0.0.1 \\\n    apache \\\n  mysql\npc2 x\n")
    assert problems == []
    assert specs(groups) == [("pc1", ["IPaddr::10.0.0.1", "apache", "mysql"]), ("pc2", ["x"])]
    assert groups[1].location.line == 4


def test_backslash_and_newline_vanish_without_adding_a_space(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "pc1 IPaddr::10.0.0.1/24\\\n/eth0\n")
    assert specs(groups) == [("pc1", ["IPaddr::10.0.0.1/24/eth0"])]


def test_comment_inside_a_continued_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    groups, problems = read(tmp_path, "pc1 apache \\\n  mysql # database\n")
    assert specs(groups) == [("pc1", ["apache", "mysql"])]
    assert messages(problems) == [
        (
            2,
            "a comment inside a continued line: Heartbeat would read its words as resources; "
            "move it to a line of its own",
            Severity.WARNING,
        )
    ]


def test_node_without_resources_is_an_error(tmp_path: Path) -> None:
    groups, problems = read(tmp_path, "pc1 apache\npc2\n")
    assert specs(groups) == [("pc1", ["apache"])]
    assert messages(problems) == [
        (2, "'pc2' has no resources (write 'pc2 <resource> ...')", Severity.ERROR)
    ]


def test_resource_without_agent_name_is_an_error(tmp_path: Path) -> None:
    _, problems = read(tmp_path, "pc1 ::foo\n")
    assert messages(problems) == [
        (1, "resource '::foo' has no agent name before '::'", Severity.ERROR)
    ]


def test_missing_file_means_no_groups(tmp_path: Path) -> None:
    assert read_haresources(tmp_path / "haresources") == ((), [])


def test_unknown_preferred_node_is_an_error(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "pc1 apache\npc3 mysql\n")
    assert [str(p) for p in check_groups(groups, ["pc1", "pc2"], "haresources")] == [
        f"{tmp_path}/haresources:2: unknown node 'pc3' in haresources (nodes are: pc1, pc2)"
    ]


def test_duplicate_group_key_is_an_error(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "pc1 10.0.0.1 apache\npc2 IPaddr::10.0.0.1 mysql\n")
    assert messages(check_groups(groups, ["pc1", "pc2"], "haresources")) == [
        (
            2,
            "group key 'IPaddr::10.0.0.1' is already used on line 1 "
            "(the first resource of each group must be unique)",
            Severity.ERROR,
        )
    ]


def test_resource_in_two_groups_is_a_warning(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "pc1 10.0.0.1 apache\npc2 10.0.0.2 apache\n")
    assert messages(check_groups(groups, ["pc1", "pc2"], "haresources")) == [
        (
            2,
            "resource 'apache' is also in the group on line 1; both groups would start it",
            Severity.WARNING,
        )
    ]


def test_resources_remember_their_line(tmp_path: Path) -> None:
    groups, _ = read(tmp_path, "\npc1 apache\n")
    assert groups[0].resources[0].location == Location(str(tmp_path / "haresources"), 2)
