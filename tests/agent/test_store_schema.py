"""The schema mirrors the store builds statements from (``agent.store.schema``) equal the columns
of a freshly migrated database, on SQLite and PostgreSQL: a migration that adds a column or table
without its mirror, or a mirror that drifts from the migration, fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, Engine, create_engine, inspect

from agent.store import LogStore, migrations, schema

# What the migrations create for the full-text index only (see search.py), which no mirror names.
FULL_TEXT_ONLY = {"sqlite": ("turns_fts",), "postgresql": ("turns.text_tsv",)}
# Names PostgreSQL reflects for a type that SQLAlchemy compiles under another one.
SYNONYMS = {"DOUBLE PRECISION": "FLOAT"}


@pytest.fixture
def migrated(store_url: str) -> Iterator[Engine]:
    """An engine on a database that a LogStore has just created and migrated."""
    LogStore(store_url).close()
    engine = create_engine(store_url)
    try:
        yield engine
    finally:
        engine.dispose()


def full_text_only(dialect: str, name: str) -> bool:
    return any(name == item or name.startswith(f"{item}_") for item in FULL_TEXT_ONLY[dialect])


def described(engine: Engine, name: str, type_: Any, nullable: bool, primary_key: bool) -> tuple[Any, ...]:
    """A column as (name, type as this dialect writes it, nullable, primary key)."""
    compiled = type_.compile(dialect=engine.dialect)
    return (name, SYNONYMS.get(compiled, compiled), nullable, primary_key)


def mirrored(engine: Engine, column: Column[Any]) -> tuple[Any, ...]:
    return described(engine, column.name, column.type, bool(column.nullable), column.primary_key)


def reflected(engine: Engine, table: str) -> set[tuple[Any, ...]]:
    inspector = inspect(engine)
    primary = set(inspector.get_pk_constraint(table)["constrained_columns"])
    return {
        described(engine, c["name"], c["type"], c["nullable"], c["name"] in primary)
        for c in inspector.get_columns(table)
        if not full_text_only(engine.dialect.name, f"{table}.{c['name']}")
    }


def test_every_migrated_table_has_a_mirror(migrated: Engine) -> None:
    tables = {
        name
        for name in inspect(migrated).get_table_names()
        if name != migrations.MIGRATIONS_TABLE and not full_text_only(migrated.dialect.name, name)
    }
    assert tables == set(schema.metadata.tables)


@pytest.mark.parametrize("table", sorted(schema.metadata.tables))
def test_mirror_columns_equal_the_migrated_columns(migrated: Engine, table: str) -> None:
    mirror = {mirrored(migrated, column) for column in schema.metadata.tables[table].columns}
    assert mirror == reflected(migrated, table)
