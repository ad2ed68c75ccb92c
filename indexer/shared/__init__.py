"""A library shared on object storage (S3 and S3-compatible: MinIO, R2, a NAS's S3 service).

Each computer keeps its own local index, written and searched first, and publishes a
*part* of the shared library from it (``s3://BUCKET/PREFIX/parts/<part id>/``: a
LanceDB database with the same tables, the thumbnails, and ``part.json``). One writer
per part (this computer), so no lock across computers. A search also asks every other
part, read-only with a short timeout, and merges on one scale (same models only).

Owns: ``target`` (the URI, credentials and endpoint from the standard AWS chain, one-line
problems), ``config`` (this data directory's share settings and publish state), ``publish``
(the background sync of this computer's part), ``remote`` (a read-only store over a part),
``search`` (the searcher that merges parts), ``library`` (share, status, leave).

May import: ``indexer.store`` (tables, read, fts), ``indexer.search`` (ranking),
``indexer.library.settings``, ``models.base`` and the plain modules; never ingest, watch,
cli, the session or the runtime (they build and drive it), never Qt.
"""
