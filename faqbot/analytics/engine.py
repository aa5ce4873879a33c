"""The database the app writes, opened for reports and the privacy tools (same settings)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.config import Settings
from faqbot.store.database import Database


def open_engine(settings: Settings) -> AsyncEngine:
    """DATABASE_URL (in DATABASE_SCHEMA on PostgreSQL), else the SQLite file in DATA_DIR."""
    return Database.from_settings(settings).engine
