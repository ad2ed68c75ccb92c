"""Library: one person's index as a whole: settings, the writer session, start-up.

`settings` (the data directory, typed settings checked on load), `writer_lock`
(one writer per data directory), `runtime` (the composition root: paths → settings
→ store → embedders → service and searcher), `autostart`, `logs`.

May import everything in indexer and models. Never Qt.
"""
