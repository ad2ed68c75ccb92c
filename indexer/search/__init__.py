"""Search: a query in words or an image → ranked files with the passage that matched.

`query` parses the query syntax, `ranking.Searcher` ranks passages, keywords,
names and images, `eval` measures retrieval quality on labelled queries.

May import: indexer.types/errors/paths/wording, indexer.store.tables, models (embedder
protocols). Never Qt, never ingest.
"""
