"""The one MetaData every table is on (with the constraint naming convention the migrations follow) and the
column types the tables share. The tables themselves are in the tables_* modules, all named in tables.py."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

from integrations.db.column_types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")
TS = UtcDateTime()  # every datetime column: aware UTC in and out, on SQLite as on PostgreSQL
