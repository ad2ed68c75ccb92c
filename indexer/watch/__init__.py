"""Watch: file-system events → debounced path batches → `IndexService.sync_paths`.

The watcher only collects and debounces; events are hints backed by reconciles.

May import: indexer.types/errors/paths, indexer.library.settings, indexer.ingest.scan
(the exclusion rules); the service it drives is a protocol (`watcher.SyncService`).
Never Qt, search, the CLI, the session or the runtime.
"""
