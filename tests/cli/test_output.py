"""Rendering of command results: tables, json, yaml, value, column picking."""

from __future__ import annotations

import json
import subprocess

import pytest

from overcast.cli.client import CliError
from overcast.cli.output import Column, Listing, Record, box_table, format_value, render

LISTING = Listing(
    [Column("ID", "id"), Column("Name", "name"), Column("Subnets", "subnets")],
    [{"id": "n1", "name": "blue", "subnets": ["s1", "s2"]}, {"id": "n2", "name": "", "subnets": []}],
)


def test_box_table_is_openstackclient_like() -> None:
    assert box_table(["ID", "Name"], [["abc", "x"]]) == (
        "+-----+------+\n"
        "| ID  | Name |\n"
        "+-----+------+\n"
        "| abc | x    |\n"
        "+-----+------+"
    )


def test_box_table_multiline_cells_and_empty() -> None:
    text = box_table(["F", "V"], [["a", "1\n22"]])
    assert text.splitlines()[3:5] == ["| a | 1  |", "|   | 22 |"]
    assert box_table(["ID"], []) == "+----+\n| ID |\n+----+\n+----+"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "None"),
        (True, "True"),
        (["a", "b"], "a, b"),
        ({"b": 1, "a": "x"}, "a='x', b='1'"),
        ([{"subnet_id": "s", "ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.6"}],
         "ip_address='10.0.0.5', subnet_id='s'\nip_address='10.0.0.6'"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text


def test_list_json_uses_headers_and_raw_values() -> None:
    assert json.loads(render(LISTING, "json")) == [
        {"ID": "n1", "Name": "blue", "Subnets": ["s1", "s2"]},
        {"ID": "n2", "Name": "", "Subnets": []},
    ]


def test_list_value_and_column_picking() -> None:
    assert render(LISTING, "value", ["id"]) == "n1\nn2"
    assert render(LISTING, "value", ["Name", "ID"]) == "blue n1\n n2"


def test_show_table_sorted_fields_with_admin_state() -> None:
    text = render(Record({"name": "blue", "admin_state_up": True, "id": "n1"}))
    rows = [line for line in text.splitlines() if not line.startswith("+")]
    assert [r.split("|")[1].strip() for r in rows] == ["Field", "admin_state_up", "id", "name"]
    assert "| UP " in text


def test_show_json_and_yaml() -> None:
    record = Record({"name": "blue", "mtu": 1450, "router:external": False})
    assert json.loads(render(record, "json")) == record.data
    assert json.loads(render(record, "json", ["mtu"])) == {"mtu": 1450}
    assert "router:external: false" in render(record, "yaml")


def test_unknown_column_is_a_clear_error() -> None:
    with pytest.raises(CliError, match="No column named 'bogus'"):
        render(LISTING, "table", ["bogus"])


def test_shell_format_survives_eval() -> None:
    tricky = 'a "quoted" $HOME `x` \\ value'
    text = render(Record({"id": "n1", "router:external": False, "description": tricky}), "shell")
    assert text.splitlines()[1] == 'id="n1"'
    script = text + '\nprintf "%s|%s|%s" "$id" "$router_external" "$description"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == f"n1|False|{tricky}"
    with pytest.raises(CliError, match="show or create"):
        render(LISTING, "shell")


def test_csv_format() -> None:
    assert render(LISTING, "csv", ["ID", "Subnets"]).splitlines() == [
        '"ID","Subnets"', '"n1","s1, s2"', '"n2",""']
    assert render(Record({"mtu": 1450}), "csv") == '"Field","Value"\n"mtu","1450"'
