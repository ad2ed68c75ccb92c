"""Lodestar's Qt-free core: scan, extract, chunk, store, pipeline, watch, search."""
