"""Watch: file-system events → debounced path batches → `IndexService.sync_paths`.

The watcher only collects and debounces; events are hints backed by reconciles.

May import: indexer.types/errors/paths, indexer.library.settings, indexer.ingest (the
service protocol only). Never Qt, never search.
"""
