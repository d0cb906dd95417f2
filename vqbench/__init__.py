"""vqbench: a reference tool for comparing vector quantizers (VQ, RVQ, PVQ, AVQ) trained
by NSVQ, STE or k-means on ANN search, VQ-VAE image compression and Gaussian toy data."""

__version__ = "0.1.0"
