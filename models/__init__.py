"""Model loading and embedding (sentence-transformers text model, open_clip CLIP)."""
