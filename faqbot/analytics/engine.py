"""The database the app writes, opened for reports and the privacy tools (same settings)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from faqbot.config import Settings

DB_FILE = "faqbot.db"


def open_engine(settings: Settings) -> AsyncEngine:
    """An engine on DATABASE_URL, else on the default SQLite file in DATA_DIR."""
    url = getattr(settings, "database_url", None)
    if url is None:
        return create_async_engine(
            f"sqlite+aiosqlite:///{(Path(settings.data_dir) / DB_FILE).resolve()}"
        )
    return create_async_engine(url.get_secret_value())
