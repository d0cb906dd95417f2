"""Quantizer layers: vqbench's VQ, RVQ, PVQ and AVQ as ``torch.nn.Module``s for any model.

A layer wraps one of :mod:`vqbench.quantizers` (which encodes and decodes) and one of the
gradient estimators of :mod:`vqbench.training` (which decides what gradients x_hat carries):

=============  =================================================================  =============
estimator      forward value in ``train()`` / gradient                             aux_loss
=============  =================================================================  =============
``nsvq``       x + ||x - x_hat|| v/||v||, v ~ N(0, I) (noise substitution)         0
``ste``        x + sg(x_hat - x): identity gradient to x                           codebook + beta * commitment
``rotation``   x_hat as lambda R x (rotation trick): lambda R^T g to x             codebook + beta * commitment
``diveq``      x + ||x_hat - x|| sg[dir. to x_hat + noise] (DiVeQ)                 0
``gumbel``     straight-through Gumbel-softmax sample per codebook                 0
``ema``        x + sg(x_hat - x); codebooks moved by moving averages, no gradient  beta * commitment
=============  =================================================================  =============

In ``eval()`` every layer returns the hard quantization (no noise, no sampling). Auxiliary
losses are means over elements (like ``F.mse_loss``), so their weight against a reconstruction
MSE does not grow with D.

Start every layer with ``replacement=True`` or ``layer.init_from_data(x)`` (better: both). The
defaults (random codebooks near zero, no replacement) leave most codewords unused: an NSVQ
layer of 256 codewords trained that way used 7-10 of them.

Bad input is refused, never quantized into a finite answer: a NaN or Inf in x (``forward`` in
train and eval, ``encode``, ``init_from_data``) or a code outside 0..codebook_size-1
(``decode``) raises a ValueError naming the first bad row or code. x must be a floating-point
tensor; an empty batch gives empty outputs and a zero aux_loss.
"""

from __future__ import annotations

import torch
from torch import nn

from ..quantizers import AVQ as _AVQ
from ..quantizers import PVQ as _PVQ
from ..quantizers import RVQ as _RVQ
from ..quantizers import VQ as _VQ
from ..quantizers import Quantizer
from ..training.diveq import DEFAULT_SIGMA2, diveq
from ..training.ema_raw import RawEMA, ema_straight_through
from ..training.gumbel import gumbel_quantize
from ..training.init import initialize_codebooks
from ..training.nsvq import nsvq
from ..training.replacement import CodewordReplacer, ReplacementConfig
from ..training.rotation import rotation_trick
from ..training.ste import ste
from .checks import check_codes, check_finite, check_floating, check_integer, check_number
from .result import Quantized

ESTIMATORS = ("nsvq", "ste", "rotation", "diveq", "gumbel", "ema")
MAX_CODEBOOK_SIZE = 1 << 16


def _bits(layer: str, codebook_size: object) -> int:
    """log2 of `codebook_size`, a power of two in 2..65536 (else a ValueError naming it)."""
    size = check_integer(layer, "codebook_size", codebook_size, 1)
    bits = size.bit_length() - 1
    if 1 << bits != size or not 2 <= size <= MAX_CODEBOOK_SIZE:
        raise ValueError(f"vqbench.{layer}: codebook_size must be a power of two in 2..{MAX_CODEBOOK_SIZE}, "
                         f"got {size}")
    return bits


def _sizes(layer: str, dim: object, num_codebooks: object = 1, divides_dim: bool = False) -> tuple[int, int]:
    """(dim, num_codebooks) checked in the layer's own terms (not the CLI's config keys)."""
    d = check_integer(layer, "dim", dim, 1)
    m = check_integer(layer, "num_codebooks", num_codebooks, 1)
    if divides_dim and d % m:
        raise ValueError(f"vqbench.{layer}: dim={d} is not divisible by num_codebooks={m}")
    return d, m


class QuantizerLayer(nn.Module):
    """A quantizer as a layer: ``forward(x)`` on any [..., D] tensor returns
    :class:`~vqbench.nn.Quantized` ``(x_hat, codes, aux_loss)``.

    Args:
        quantizer: the :class:`vqbench.quantizers.Quantizer` that encodes and decodes.
        estimator: how gradients pass the quantizer in training, one of ``ESTIMATORS``
            (``"nsvq"``, ``"ste"``, ``"rotation"``, ``"diveq"``, ``"gumbel"``, ``"ema"``).
        beta: commitment weight of ``ste``, ``rotation`` and ``ema``.
        replacement: replace dead codewords during training (as the NSVQ paper does): every
            ``replacement_every`` training forwards, codewords used in fewer than
            ``discard_threshold`` of them become noisy copies of used ones.
        replacement_every: training forwards per replacement window.
        discard_threshold: usage fraction below which a codeword counts as dead.
        temperature: ``gumbel``'s temperature (divides the squared distances).
        sigma2: ``diveq``'s noise variance.
        ema_decay: ``ema``'s moving-average decay, in [0, 1).
    """

    def __init__(self, quantizer: Quantizer, estimator: str = "nsvq", beta: float = 0.25,
                 replacement: bool = False, replacement_every: int = 100, discard_threshold: float = 0.01,
                 temperature: float = 1.0, sigma2: float = DEFAULT_SIGMA2, ema_decay: float = 0.99):
        super().__init__()
        name = type(self).__name__
        if estimator not in ESTIMATORS:
            raise ValueError(f"vqbench.{name}: estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self.quantizer = quantizer
        self.estimator = estimator
        self.beta = check_number(name, "beta", beta, 0.0)
        self.temperature = check_number(name, "temperature", temperature, 0.0)
        if self.temperature == 0:
            raise ValueError(f"vqbench.{name}: temperature must be > 0, got {temperature!r}")
        self.sigma2 = check_number(name, "sigma2", sigma2, 0.0)
        replacement_every = check_integer(name, "replacement_every", replacement_every, 1)
        discard_threshold = check_number(name, "discard_threshold", discard_threshold, 0.0, 1.0)
        ema_decay = check_number(name, "ema_decay", ema_decay, 0.0, 1.0, high_open=True)
        self.replacement = bool(replacement)
        M, K = quantizer.num_codebooks, quantizer.codebook_size
        # Usage counts of the current replacement window (a buffer: it follows .to(device)).
        self.register_buffer("codeword_usage", torch.zeros(M, K), persistent=False)
        self._replacer = CodewordReplacer(quantizer.codebooks, num_batches=replacement_every,
                                          discard_threshold=discard_threshold, noise=ReplacementConfig.noise)
        self._window_batches = 0
        self.ema: RawEMA | None = None
        if estimator == "ema":
            self.ema = RawEMA(quantizer, decay=ema_decay)
            quantizer.codebooks.requires_grad_(False)

    # ------------------------------------------------------------------ sizes
    @property
    def dim(self) -> int:
        """D, the size of the last axis of the input."""
        return self.quantizer.dim

    @property
    def num_codebooks(self) -> int:
        """M, the codes per vector."""
        return self.quantizer.num_codebooks

    @property
    def codebook_size(self) -> int:
        """K, codewords per codebook."""
        return self.quantizer.codebook_size

    @property
    def bits(self) -> int:
        """Bits per vector, M log2 K."""
        return self.quantizer.bits

    @property
    def codebooks(self) -> nn.Parameter:
        """The codebooks [M, K, d] (d = D, or D/M for PVQ)."""
        return self.quantizer.codebooks

    @property
    def codewords_replaced(self) -> int:
        """Codewords replaced so far (``replacement=True``)."""
        return self._replacer.total_replaced

    def extra_repr(self) -> str:
        """The settings printed in the module's repr."""
        return f"estimator={self.estimator}, replacement={self.replacement}"

    # ------------------------------------------------------------------ encode / decode
    def _flatten(self, x: torch.Tensor, what: str = "input") -> torch.Tensor:
        """x [..., D] as [N, D], after checking its type, shape and values (finite)."""
        name = type(self).__name__
        check_floating(name, x, what)
        if x.dim() < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"vqbench.{name}: the {what}'s last axis must have size dim={self.dim}, "
                             f"got shape {tuple(x.shape)}")
        check_finite(name, x.detach(), what)
        return x.reshape(-1, self.dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes [..., M] (int64) of x [..., D]: the hard encoding, no gradient."""
        return self.quantizer.encode(self._flatten(x)).view(*x.shape[:-1], self.num_codebooks)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """x_hat [..., D] from codes [..., M] (differentiable with respect to the codebooks);
        a ValueError for codes outside 0..codebook_size-1."""
        if codes.dim() < 1 or codes.shape[-1] != self.num_codebooks:
            raise ValueError(f"vqbench.{type(self).__name__}: codes' last axis must have size "
                             f"num_codebooks={self.num_codebooks}, got shape {tuple(codes.shape)}")
        check_codes(type(self).__name__, codes, torch.full((self.num_codebooks,), self.codebook_size))
        flat = codes.reshape(-1, self.num_codebooks).to(self.codebooks.device)
        return self.quantizer.decode(flat).view(*codes.shape[:-1], self.dim)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, seed: int = 0) -> None:
        """Set the codebooks from example vectors x [..., D] (the quantizer's data
        initialisation: random training vectors, or residuals for RVQ/AVQ); x must hold at
        least one vector, all finite."""
        flat = self._flatten(x, "init_from_data's x").to(self.codebooks)
        if flat.shape[0] == 0:
            raise ValueError(f"vqbench.{type(self).__name__}: init_from_data needs at least one vector, "
                             f"got shape {tuple(x.shape)}")
        initialize_codebooks(self.quantizer, flat, "data", torch.Generator().manual_seed(seed))
        if self.ema is not None:
            self.ema.reset(torch.ones_like(self.ema.counts, dtype=torch.bool))

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> Quantized:
        """Quantize x [..., D] -> :class:`Quantized` ``(x_hat [..., D], codes [..., M], aux_loss)``."""
        flat = self._flatten(x)
        zero = flat.new_zeros(())
        if flat.shape[0] == 0:  # nothing to quantize: no estimator, no EMA or replacement step
            codes = self.quantizer.encode(flat.detach())
            out = flat + (self.quantizer.decode(codes) - flat).detach()
            return Quantized(out.view(x.shape), codes.view(*x.shape[:-1], self.num_codebooks), zero)
        if self.training and self.replacement:
            self._replace_dead()
        codes = self.quantizer.encode(flat.detach())
        if not self.training:
            out, aux = self.quantizer.decode(codes), zero
        else:
            out, codes, aux = self._estimate(flat, codes, zero)
            if self.replacement:
                self._replacer.batches_used = self.codeword_usage
                self._replacer.record(codes)
                self._window_batches += 1
        return Quantized(out.view(x.shape), codes.view(*x.shape[:-1], self.num_codebooks), aux)

    def _estimate(self, x: torch.Tensor, codes: torch.Tensor,
                  zero: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training output of the estimator: (x_out [N, D], codes [N, M], aux_loss)."""
        name, q = self.estimator, self.quantizer
        per_element = 1.0 / self.dim  # the estimators' losses sum over D; report means over elements
        if name == "gumbel":
            out, codes = gumbel_quantize(q, x, codes, self.temperature)
            return out, codes, zero
        if name == "ema":
            with torch.no_grad():
                x_hat = q.decode(codes)
            out, loss = ema_straight_through(x, x_hat, self.beta)
            assert self.ema is not None
            self.ema.update(x.detach(), codes)
            return out, codes, loss * per_element
        x_hat = q.decode(codes)
        if name == "nsvq":
            return nsvq(x, x_hat), codes, zero
        if name == "diveq":
            return diveq(x, x_hat, self.sigma2), codes, zero
        if name == "ste":
            out, loss = ste(x, x_hat, self.beta)
        else:  # rotation
            out, loss = rotation_trick(x, x_hat, self.beta)
        return out, codes, loss * per_element

    @torch.no_grad()
    def _replace_dead(self) -> None:
        """Close a replacement window once it has seen ``replacement_every`` batches: replace
        the codewords used in fewer than ``discard_threshold`` of them. Runs before the next
        batch is encoded, so no autograd graph holds the old codewords."""
        r = self._replacer
        if self._window_batches < r.num_batches:
            return
        r.codebooks = self.quantizer.codebooks
        dead = self.codeword_usage / self._window_batches < r.discard_threshold
        r.replace(dead)
        if self.ema is not None:
            self.ema.reset(dead)
        self.codeword_usage.zero_()
        self._window_batches = 0


_COMMON_ARGS = """
    Keyword arguments shared by every layer (see :class:`QuantizerLayer`):

    * ``estimator="nsvq"``: one of ``"nsvq"``, ``"ste"``, ``"rotation"``, ``"diveq"``, ``"gumbel"``, ``"ema"``;
    * ``beta=0.25``: commitment weight (``ste``, ``rotation``, ``ema``);
    * ``replacement=False``, ``replacement_every=100``, ``discard_threshold=0.01``: dead-codeword
      replacement in training. Set ``replacement=True`` and/or call ``init_from_data(x)`` on a
      batch of real inputs before training: with neither, the random start near zero leaves
      most codewords unused (an NSVQ layer of 256 codewords used 7-10 of them);
    * ``temperature=1.0`` (``gumbel``), ``sigma2=1e-3`` (``diveq``), ``ema_decay=0.99`` (``ema``).

    ``forward(x)`` on x [..., dim] returns :class:`~vqbench.nn.Quantized` ``(x_hat, codes, aux_loss)``
    with codes [..., num_codebooks]; ``encode(x)`` / ``decode(codes)``; ``init_from_data(x)``.
    A NaN/Inf in x or a code out of range raises a ValueError (never a finite answer).
"""


class VQ(QuantizerLayer):
    """Vector quantization: one codebook of ``codebook_size`` codewords (a power of two) of
    dimension ``dim``; codes are [..., 1]."""

    def __init__(self, dim: int, codebook_size: int = 256, estimator: str = "nsvq", beta: float = 0.25,
                 replacement: bool = False, replacement_every: int = 100, discard_threshold: float = 0.01,
                 temperature: float = 1.0, sigma2: float = DEFAULT_SIGMA2, ema_decay: float = 0.99):
        dim, _ = _sizes("VQ", dim)
        super().__init__(_VQ(dim, bits_per_codebook=_bits("VQ", codebook_size)), estimator, beta, replacement,
                         replacement_every, discard_threshold, temperature, sigma2, ema_decay)


class RVQ(QuantizerLayer):
    """Residual VQ: ``num_codebooks`` greedy stages of ``codebook_size`` codewords (a power of
    two), stage m quantizing what stages 0..m-1 left; num_codebooks * log2(codebook_size) bits."""

    def __init__(self, dim: int, num_codebooks: int = 4, codebook_size: int = 256, estimator: str = "nsvq",
                 beta: float = 0.25, replacement: bool = False, replacement_every: int = 100,
                 discard_threshold: float = 0.01, temperature: float = 1.0, sigma2: float = DEFAULT_SIGMA2,
                 ema_decay: float = 0.99):
        dim, num_codebooks = _sizes("RVQ", dim, num_codebooks)
        super().__init__(_RVQ(dim, num_codebooks, _bits("RVQ", codebook_size)), estimator, beta, replacement,
                         replacement_every, discard_threshold, temperature, sigma2, ema_decay)


class PVQ(QuantizerLayer):
    """Product VQ: ``dim`` split into ``num_codebooks`` equal subspaces (``dim`` must be
    divisible by it), one codebook of ``codebook_size`` codewords per subspace."""

    def __init__(self, dim: int, num_codebooks: int = 4, codebook_size: int = 256, estimator: str = "nsvq",
                 beta: float = 0.25, replacement: bool = False, replacement_every: int = 100,
                 discard_threshold: float = 0.01, temperature: float = 1.0, sigma2: float = DEFAULT_SIGMA2,
                 ema_decay: float = 0.99):
        dim, num_codebooks = _sizes("PVQ", dim, num_codebooks, divides_dim=True)
        super().__init__(_PVQ(dim, num_codebooks, _bits("PVQ", codebook_size)), estimator, beta, replacement,
                         replacement_every, discard_threshold, temperature, sigma2, ema_decay)


class AVQ(QuantizerLayer):
    """Additive VQ: x_hat is a sum of one codeword from each of ``num_codebooks`` full-dimension
    codebooks, the codes found by beam search of width ``beam_width`` (Babenko & Lempitsky 2014)."""

    def __init__(self, dim: int, num_codebooks: int = 4, codebook_size: int = 256, beam_width: int = 16,
                 estimator: str = "nsvq", beta: float = 0.25, replacement: bool = False,
                 replacement_every: int = 100, discard_threshold: float = 0.01, temperature: float = 1.0,
                 sigma2: float = DEFAULT_SIGMA2, ema_decay: float = 0.99):
        dim, num_codebooks = _sizes("AVQ", dim, num_codebooks)
        beam_width = check_integer("AVQ", "beam_width", beam_width, 1)
        super().__init__(_AVQ(dim, num_codebooks, _bits("AVQ", codebook_size), beam_width), estimator, beta,
                         replacement, replacement_every, discard_threshold, temperature, sigma2, ema_decay)


for _layer in (VQ, RVQ, PVQ, AVQ):
    _layer.__doc__ = (_layer.__doc__ or "") + "\n" + _COMMON_ARGS
    _layer.__init__.__doc__ = f"Build a {_layer.__name__} layer; see the class docstring for the arguments."
del _layer
