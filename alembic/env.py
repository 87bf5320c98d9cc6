"""Alembic environment: migrates the database named by the caller or EAKTE_DATABASE_URL."""

from __future__ import annotations

from logging.config import fileConfig

from sqlalchemy import Connection

from alembic import context
from eakte.db import make_engine
from eakte.models import Base
from eakte.search.fts import drop_sqlite_triggers, restore_sqlite_triggers
from eakte.settings import Settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            drop_sqlite_triggers(connection)
        context.run_migrations()
        if sqlite:
            restore_sqlite_triggers(connection)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("database_url") or Settings().database_url
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `eakte db upgrade`")
run_migrations_online()
