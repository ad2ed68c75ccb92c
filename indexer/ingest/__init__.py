"""Ingest: files on disk → records, passages and vectors in the store.

`scan` lists a watched folder (lstat only, exclusions), `safe_open` opens a file
without following any symlink below its root, `extract/` turns a file into text or
pixels (risky parsers in a sandboxed worker), `chunk` cuts text into passages, and
`pipeline.IndexService` runs them with the embedders and writes through the store.

May import: indexer.types/errors/paths/wording, indexer.library.settings and logs,
indexer.store (tables to write; ann and health for upkeep), models (through the
embedder protocols in models.base). Never Qt, search, watch, the CLI, the session or
the runtime. A new file type goes in `extract/` (its extension in
`extract/__init__.py`, a parser run in the sandbox); nothing outside this room changes.
"""
