"""The migrations create exactly the schema the models declare, so a new table or column
cannot ship without its revision."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from qms.db import make_engine
from qms.models import target_metadata


def test_migrated_schema_matches_the_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = [d for metadata in target_metadata
                           for d in compare_metadata(context, metadata)
                           if not _other_metadata(d, metadata)]
    finally:
        engine.dispose()
    assert differences == []


def _other_metadata(difference, metadata) -> bool:
    # each metadata object sees the other's tables as "extra"; only its own count here
    kind = difference[0] if isinstance(difference, tuple) else difference[0][0]
    if kind == "remove_table":
        return difference[1].name not in metadata.tables
    if kind == "remove_index":
        return difference[1].table.name not in metadata.tables
    return False
