"""Library: one person's index as a whole: settings, the writer session, start-up.

`settings` (the data directory, typed settings checked on load), `writer_lock`
(one writer per data directory), `runtime` (the composition root: paths → settings
→ store → embedders → service and searcher), `session` (the writer session over a
runtime: lock → index service → watcher, folders, status, problems; the one door the
window and `lodestar watch` use), `autostart`, `logs`.

May import everything in indexer and models. Never Qt.
"""
