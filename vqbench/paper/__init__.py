"""The paper this tool reproduces: its published numbers, units and counting conventions.

M. H. Vali and T. Bäckström, "Stochastic Optimization of Vector Quantization Methods in
Application to Speech and Image Processing", ICASSP 2023.
"""

from .reference import FIGURES, Figure, Series, figure

__all__ = ["FIGURES", "Figure", "Series", "figure"]
