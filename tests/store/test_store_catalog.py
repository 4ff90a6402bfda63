"""The catalog: parsing TOML/JSON files, storing them as the truth (on each backend, through
the ``store`` fixture of tests/store/conftest.py), discovering from events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from store_backends import ingest_projected, rows

from jacmon.errors import JacmonError
from jacmon.events import validate_event
from jacmon.store import Store
from jacmon.store.catalog import CatalogPath, parse_catalog_file

TOML_CATALOG = """
[[paths]]
id = "python-101"
title = "Python basics"
modules = [
  { id = "m1", title = "Variables" },
  "m2",
  { id = "m3" },
]

[[paths]]
id = "sql-101"
modules = ["s1"]
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_parse_toml(tmp_path):
    paths = parse_catalog_file(write(tmp_path, "catalog.toml", TOML_CATALOG))
    assert paths == [
        CatalogPath(
            "python-101", "Python basics", [("m1", "Variables"), ("m2", None), ("m3", None)]
        ),
        CatalogPath("sql-101", None, [("s1", None)]),
    ]


def test_parse_json_by_suffix_case_insensitive(tmp_path):
    data = {"paths": [{"id": "p", "title": "P", "modules": ["a", {"id": "b", "title": "B"}]}]}
    for name in ("catalog.json", "CATALOG.JSON"):
        paths = parse_catalog_file(write(tmp_path, name, json.dumps(data)))
        assert paths == [CatalogPath("p", "P", [("a", None), ("b", "B")])]


def test_any_other_suffix_is_read_as_toml(tmp_path):
    paths = parse_catalog_file(write(tmp_path, "catalog.txt", TOML_CATALOG))
    assert [p.id for p in paths] == ["python-101", "sql-101"]


def test_shipped_demo_catalog_parses():
    from jacmon.sim.catalog import DEMO_CATALOG

    paths = parse_catalog_file(DEMO_CATALOG)
    assert paths
    assert all(p.modules for p in paths)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(JacmonError) as caught:
        parse_catalog_file(path)
    assert str(caught.value) == f"cannot read catalog file {path}: No such file or directory"


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(JacmonError, match=f"cannot read catalog file {tmp_path}"):
        parse_catalog_file(tmp_path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad.toml", "[[paths]\nid = 'x'"),
        ("bad.json", '{"paths": [}'),
        ("latin.toml", b"title = '\xe9'"),
    ],
)
def test_unparsable_file_names_the_file(tmp_path, name, text):
    path = write(tmp_path, name, text)
    with pytest.raises(JacmonError) as caught:
        parse_catalog_file(path)
    assert str(caught.value).startswith(f"catalog file {path} cannot be parsed: ")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.toml", ""),
        ("other.toml", "[[courses]]\nid = 'x'\n"),
        ("empty-list.json", '{"paths": []}'),
        ("table.toml", "[paths]\nid = 'x'\n"),
        ("list.json", '[{"id": "x"}]'),
    ],
)
def test_no_paths_list(tmp_path, name, text):
    path = write(tmp_path, name, text)
    with pytest.raises(JacmonError) as caught:
        parse_catalog_file(path)
    assert str(caught.value) == (
        f"catalog file {path} has no 'paths' list; "
        "expected [[paths]] tables with 'id' and 'modules'"
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"modules": ["m1"]}, "has no 'id'; each path needs a non-empty string id"),
        ({"id": "", "modules": ["m1"]}, "has no 'id'; each path needs a non-empty string id"),
        ({"id": 7, "modules": ["m1"]}, "has no 'id'; each path needs a non-empty string id"),
        ("python-101", "has no 'id'; each path needs a non-empty string id"),
        ({"id": "p"}, "('p') has no 'modules' list"),
        ({"id": "p", "modules": []}, "('p') has no 'modules' list"),
        ({"id": "p", "modules": "m1"}, "('p') has no 'modules' list"),
        ({"id": "p", "modules": ["m1", "m2", "m1"]}, "('p') lists module 'm1' twice"),
        ({"id": "p", "modules": ["m1", {"id": "m1"}]}, "('p') lists module 'm1' twice"),
    ],
)
def test_bad_path_entries_name_the_index(tmp_path, entry, expected):
    data = {"paths": [{"id": "ok", "modules": ["a"]}, entry]}
    path = write(tmp_path, "c.json", json.dumps(data))
    with pytest.raises(JacmonError) as caught:
        parse_catalog_file(path)
    assert str(caught.value) == f"catalog file {path}, paths[1] {expected}"


@pytest.mark.parametrize("module", [3, "", {"title": "no id"}, {"id": ""}, None])
def test_bad_module_entries_name_the_position(tmp_path, module):
    path = write(tmp_path, "c.json", json.dumps({"paths": [{"id": "p", "modules": ["a", module]}]}))
    with pytest.raises(JacmonError) as caught:
        parse_catalog_file(path)
    assert str(caught.value) == (
        f"catalog file {path}, paths[0].modules[1] is {module!r}; expected a module id or "
        "{id = ..., title = ...}"
    )


# In the store


async def catalog_rows(store: Store) -> list[tuple]:
    """The catalog tables joined (with the module's own source, which the interface's
    catalog_rows leaves out)."""
    found = await rows(
        store,
        "SELECT c.path, p.title AS path_title, p.source AS path_source, c.position, c.module,"
        " c.title, c.source FROM catalog_modules c JOIN catalog_paths p ON p.path = c.path"
        " ORDER BY c.path, c.position",
    )
    return [tuple(r.values()) for r in found]


async def test_load_stores_ordered_modules_as_authoritative(store, tmp_path):
    await store.load_catalog(parse_catalog_file(write(tmp_path, "c.toml", TOML_CATALOG)))
    assert await catalog_rows(store) == [
        ("python-101", "Python basics", "file", 1, "m1", "Variables", "file"),
        ("python-101", "Python basics", "file", 2, "m2", None, "file"),
        ("python-101", "Python basics", "file", 3, "m3", None, "file"),
        ("sql-101", None, "file", 1, "s1", None, "file"),
    ]
    assert store.catalog.module_counts == {"python-101": 3, "sql-101": 1}
    assert store.catalog.authoritative == {"python-101", "sql-101"}


async def test_reloading_a_path_replaces_its_modules_and_keeps_others(store):
    await store.load_catalog(
        [CatalogPath("p", "Old", [("a", None), ("b", None)]), CatalogPath("q", None, [("x", None)])]
    )
    await store.load_catalog([CatalogPath("p", "New", [("c", "C"), ("a", None)])])
    assert await catalog_rows(store) == [
        ("p", "New", "file", 1, "c", "C", "file"),
        ("p", "New", "file", 2, "a", None, "file"),
        ("q", None, "file", 1, "x", None, "file"),
    ]
    assert store.catalog.module_counts == {"p": 2, "q": 1}


async def test_discovered_path_becomes_authoritative_when_loaded(store):
    event = validate_event(
        {
            "id": "e1",
            "type": "module.progressed",
            "ts": "2026-01-05T10:00:00Z",
            "learner": "u1",
            "path": "p",
            "module": "seen-only",
            "progress": 10,
        }
    )
    await ingest_projected(store, [event])
    assert await catalog_rows(store) == [("p", None, "seen", 1, "seen-only", None, "seen")]
    assert store.catalog.authoritative == set()

    await store.load_catalog([CatalogPath("p", "P", [("m1", None), ("m2", None)])])
    assert await catalog_rows(store) == [
        ("p", "P", "file", 1, "m1", None, "file"),
        ("p", "P", "file", 2, "m2", None, "file"),
    ]
    assert store.catalog.authoritative == {"p"}


async def test_catalog_load_reads_the_tables_back(store, store_location):
    await store.load_catalog([CatalogPath("p", "P", [("a", None), ("b", "B")])])
    # A second store (another process, or another node) reads what the first wrote.
    other = await Store.open(store_location)
    try:
        assert other.catalog.module_counts == {"p": 2}
        assert other.catalog.authoritative == {"p"}
        assert other.catalog.known_modules == {("p", "a"), ("p", "b")}
        assert await other.catalog_rows() == [
            {"path": "p", "path_title": "P", "source": "file", "position": 1, "module": "a",
             "title": None},
            {"path": "p", "path_title": "P", "source": "file", "position": 2, "module": "b",
             "title": "B"},
        ]  # fmt: skip
    finally:
        await other.close()


async def test_another_process_loading_a_catalog_is_picked_up(store, store_location):
    assert await store.refresh_catalog() is False
    other = await Store.open(store_location)
    try:
        await other.load_catalog([CatalogPath("p", None, [("a", None), ("b", None)])])
    finally:
        await other.close()
    assert await store.refresh_catalog() is True
    assert store.catalog.module_counts == {"p": 2}
    assert await store.refresh_catalog() is False


async def test_modules_left_out_names_progress_the_file_does_not_list(store):
    event = validate_event(
        {"id": "e1", "type": "module.progressed", "ts": "2026-01-05T10:00:00Z",
         "learner": "u1", "path": "p", "module": "extra", "progress": 10}
    )  # fmt: skip
    await ingest_projected(store, [event])
    listed = [CatalogPath("p", None, [("a", None)]), CatalogPath("q", None, [("x", None)])]
    assert await store.modules_left_out(listed) == {"p": ["extra"]}
    assert await store.modules_left_out([]) == {}


async def test_catalog_survives_reopen(store_location):
    store = await Store.open(store_location)
    await store.load_catalog([CatalogPath("p", None, [("a", None), ("b", None)])])
    await store.close()
    store = await Store.open(store_location, readonly=True)
    try:
        assert store.catalog.module_counts == {"p": 2}
        assert store.catalog.authoritative == {"p"}
    finally:
        await store.close()
