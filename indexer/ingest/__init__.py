"""Ingest: files on disk → records, passages and vectors in the store.

`scan` lists a watched folder (lstat only, exclusions), `safe_open` opens a file
without following any symlink below its root, `extract/` turns a file into text or
pixels (risky parsers in a sandboxed worker), `chunk` cuts text into passages, and
`pipeline.IndexService` runs them with the embedders and writes through the store.

May import: indexer.types/errors/paths/wording, indexer.library.settings, indexer.store.tables,
models (through the embedder protocols). Never Qt, never search.
"""
