"""Persistence behind one interface: ``base.Store``, with SQL and in-memory backends."""

from wisp.store.base import Store

__all__ = ["Store", "open_store"]


def open_store(url: str) -> Store:
    """Open (and migrate) the store at ``url``: ``memory://``, ``sqlite:///…``, ``postgresql://…``."""
    if url.startswith("memory:"):
        from wisp.store.memory import MemoryStore

        return MemoryStore()
    from wisp.store.sql import SqlStore

    store = SqlStore(url)
    store.migrate()
    return store
