"""Lodestar's Qt-free core, in rooms (each package's docstring says what it owns and may import).

ingest (files → records, passages, vectors), watch (events → batches → ingest), store
(the tables, their writes, reads, upkeep and health), search (query → ranked files),
duplicates (groups of copies), library (settings, writer lock, the runtime that builds
everything, the session that is the window's one door), cli (`lodestar`). Plain modules
any room may use: types, errors, paths, wording. Map and flows: docs/ARCHITECTURE.md.
"""
