"""Store: the LanceDB tables, their writes, their upkeep and their health.

`tables.Store` owns the tables and the one write path (data → file rows → cleanup),
`ann` and `fts` keep the vector and keyword indexes, `health` checks and repairs.

May import: indexer.types/errors/paths, indexer.library.settings (paths). Never Qt,
never ingest or search.
"""
