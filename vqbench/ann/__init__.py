"""Approximate nearest-neighbour search: exact kNN and recall, faiss baselines, faiss index export."""
