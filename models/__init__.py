"""Embedding models: text (sentence-transformers) and images (open_clip CLIP).

`base` holds the two protocols the rest of Lodestar is written against
(`TextEmbedder`, `ImageEmbedder`); `text` and `clip` implement them, each serving its
model through a small backend (torch, or ONNX Runtime: `onnx_text`, `onnx_clip`, the
light paths that never import torch). `weights` says where CLIP weights come from,
`device` picks the device, `exports` runs the background ONNX exports. A new embedding
model is a class satisfying a protocol, with its own `model_id` (which names its
vector space and its table); `indexer.library.runtime` chooses which one is built.

May import: indexer.library.settings (weights). Never the rest of indexer, never Qt.
"""
