"""The map (issue 17): the library laid out in two dimensions by meaning, with named regions.

Owns: `vectors` (one vector per file from the store's read layer: the mean of a
document's passages, an image's CLIP vector), `layout` (UMAP fit, placement of new
points into a kept layout, the PCA fallback), `regions` (HDBSCAN clusters, their labels
and the zoom level at which each label shows), `keep` (the map files kept with the
index, written atomically), `build` (what the session calls: load, build, query hits),
`render` (a PNG with Pillow for `lodestar map --png`).

Reads the index through `indexer.store.read` only and never writes its tables; the only
files it writes are its own, under ``<data dir>/map/``. May import `store` (tables'
plain helpers, read), `library.settings`, `models.base`, `search` (a query's hits);
never ingest, watch, cli, session, runtime or desktop (tests/unit/test_import_rules.py).
"""
