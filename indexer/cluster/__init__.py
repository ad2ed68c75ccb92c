"""Cluster: bulk indexing on Ray (`lodestar index --ray ADDRESS PATH...`, issue 19).

Lodestar grows no cluster of its own: Ray runs the work. This room plugs a Ray cluster
into the pipeline's seam (`indexer.ingest.pipeline.WorkSource`): the scan of a root, the
reading of batches of files (the pipeline's own reading code, `IndexService._extract`,
without the store) and the embedding (one text-model actor and one CLIP actor per
worker, on GPUs when the cluster has them) run on the cluster; the writer, this
process, decides which files need work and commits through `Store.write` as a local
run does. It owns:

- `worker`: what runs on the cluster (the scan task, the reading task, the model actors);
- `ray_index`: the driver (`RayCluster`: connect or start Ray, place the actors;
  `RaySource`: the stream of batches, failures kept per file).

``ray`` is an optional extra (``pip install 'lodestar[cluster]'``), imported inside
functions only. May import: the plain modules, `indexer.ingest` (pipeline, scan),
`indexer.store.tables`, `indexer.library.settings`, `models.base`; never search, watch,
duplicates, the CLI, the session, the runtime or Qt. Embedders reach the actors as
factories (picklable callables) built by the caller: `indexer/cli/index.py` from the
runtime's settings, the tests from their fakes and the tiny CLIP.
"""
