"""Duplicates and near-duplicates: find them, explain them, reclaim space safely (issue 18).

Four tiers, kept apart, each with the rule the person sees (`tiers.TIER_RULES`):
identical files (same bytes), the same picture saved again (perceptual hash confirmed
by CLIP), similar shots (CLIP plus closeness in time) and the same document in another
form or version (MinHash of word shingles). A later tier works on one file per group of
an earlier one, so an identical copy never shows again as a re-save or a burst shot.

This room reads; it never indexes. It owns:

- `tiers`: the pure rules over arrays (hash buckets, time windows, MinHash LSH), with
  the plain result types (`DuplicateGroup`, `Member`); no store, no files, so the
  benchmark runs them on generated data;
- `scan`: what the rules need from the index (records, vectors and passages through the
  store's read layer `indexer.store.read`, never a query of its own) and from the files
  (perceptual hashes of the stored thumbnails, EXIF date and camera), cached per content
  hash in the data directory, and the suggested keeper of each group;
- `actions`: what the person decides: "not duplicates" and preferred folders remembered
  in the data directory, and moving extra copies to the system trash (never a
  permanent delete), after which the caller lets the index follow.

It may import the store, `indexer.library.settings` and the plain modules; never
ingest, watch, the CLI, the session or the window. The session (`indexer.library.session`)
is the window's door to it; `lodestar duplicates` lists groups and never deletes.
"""
