"""Approximate nearest-neighbour search: exact kNN and recall, faiss baselines, faiss index export,
the evaluation of a codec on an ANN dataset and the files an ANN run saves."""
