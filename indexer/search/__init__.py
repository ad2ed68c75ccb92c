"""Search: a query in words or an image → ranked files with the passage that matched.

`query` parses the query syntax, `ranking.Searcher` turns a query into ranked
results (passages, keywords, names and images), `filters.FileFilter` says which
files may appear, `names.NameIndex` matches file names and titles in memory,
`query_image` decodes a query image, `eval` measures retrieval quality on labelled
queries. Every read of the tables goes through `indexer.store.read.StoreReader`;
search writes no LanceDB query of its own.

May import: indexer.types/errors/paths/wording, indexer.library.settings, indexer.store
(tables, read), models (embedder protocols). Never Qt, watch, the CLI, the session or the
runtime; never ingest, except the guarded image decoder (`indexer.ingest.extract`) that
`query_image` imports when a query image arrives.
"""
