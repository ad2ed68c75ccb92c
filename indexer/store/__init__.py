"""Store: the LanceDB tables, their writes, their upkeep and their health.

`tables.Store` owns the tables, their schema version (checked on open) and the one
write path (data → file rows → cleanup). `read.StoreReader` is the read side search
asks by intent (nearest chunks or images, keyword hits, the vectors of some files,
every vector of a kind in batches); it alone writes search's queries and holds the
rule of which rows are live (`read.is_live`). `ann` and `fts` keep the vector and
keyword indexes, `health` checks and repairs.

May import: indexer.types/errors/paths/wording, indexer.library.settings (paths) and
indexer.library.writer_lock (health repairs only as the writer). Never Qt; never
ingest, search, watch, the CLI, the session or the runtime.
"""
