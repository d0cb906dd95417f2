"""The base of the quantizer layers (vqbench's VQ, RVQ, PVQ and AVQ as ``torch.nn.Module``s for
any model; the four classes are in codebook_layers.py, how codebooks start in layer_init.py).

A layer wraps one of :mod:`vqbench.quantizers` (which encodes and decodes) and one of the
registered gradient estimators (``vqbench.training.ESTIMATORS``, one module each), which decides
what x_hat carries in training:

=============  =================================================================  =============
estimator      forward value in ``train()`` / gradient                             aux_loss
=============  =================================================================  =============
``nsvq``       x + ||x - x_hat|| v/||v||, v ~ N(0, I) (noise substitution)         0
``ste``        x + sg(x_hat - x): identity gradient to x                           codebook + beta * commitment
``rotation``   x_hat as lambda R x (rotation trick): lambda R^T g to x             codebook + beta * commitment
``diveq``      x + ||x_hat - x|| sg[dir. to x_hat + noise] (DiVeQ)                 0
``sf_diveq``   DiVeQ to a dithered point between neighbouring codewords (not AVQ)  0
``gumbel``     straight-through Gumbel-softmax sample per codebook                 0
``ema``        x + sg(x_hat - x); codebooks moved by moving averages, no gradient  beta * commitment
=============  =================================================================  =============

In ``eval()`` every layer returns the hard quantization (no noise, no sampling). Auxiliary
losses are means over elements (like ``F.mse_loss``), so their weight against a reconstruction
MSE does not grow with D. The VQ-VAE of ``vqbench experiment=vqvae`` trains exactly such a layer.

Bad input is refused, never quantized into a finite answer: a NaN or Inf in x (``forward`` in
train and eval, ``encode``, ``init_from_data``) or a code outside 0..codebook_size-1
(``decode``) raises a ValueError naming the first bad row or code. x must be a floating-point
tensor; an empty batch gives empty outputs and a zero aux_loss.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..quantizers import Quantizer
from ..training.diveq import DEFAULT_NOISE_STD
from ..training.estimator import Estimator
from ..training.registry import estimator_class
from ..training.replacement import CodewordReplacer, ReplacementConfig
from .checks import check_codes, check_finite, check_floating, check_integer, check_number
from .layer_init import INITS, LAYER_INITS
from .result import Quantized


class QuantizerLayer(nn.Module):
    """A quantizer as a layer: ``forward(x)`` on any [..., D] tensor returns
    :class:`~vqbench.nn.Quantized` ``(x_hat, codes, aux_loss)``.

    Args:
        quantizer: the :class:`vqbench.quantizers.Quantizer` that encodes and decodes.
        estimator: how gradients pass the quantizer in training: a name in ``ESTIMATORS``
            (``"nsvq"``, ``"ste"``, ``"rotation"``, ``"diveq"``, ``"sf_diveq"``, ``"gumbel"``,
            ``"ema"``, or one added with ``vqbench.training.register_estimator``), or an
            :class:`~vqbench.training.Estimator` built for ``quantizer``.
        beta: commitment weight of ``ste``, ``rotation`` and ``ema``.
        replacement: replace dead codewords during training (as the NSVQ paper does): every
            ``replacement_every`` training batches, codewords used in fewer than
            ``discard_threshold`` of them become noisy copies of used ones. On by default: without
            it a layer trained from a random start typically uses a small fraction of its
            codewords (an NSVQ layer with 256 codewords used 7-10 of them in 200 steps).
        replacement_every: training batches per replacement window.
        discard_threshold: usage fraction below which a codeword counts as dead.
        init: how the codebooks start, set from the first training batch (unless
            ``init_from_data`` or a loaded state did it before): ``"random"`` (N(0, (0.01 s)^2),
            s the batch's std, as the CLI's ``optimizer.init=random``), ``"data"`` (random
            vectors, residuals for RVQ/AVQ) or ``"kmeans"`` (the quantizer's classical fit to the
            batch, 10 Lloyd iterations; needs faiss, loaded then, and at least codebook_size vectors).
        temperature: ``gumbel``'s temperature (divides the squared distances).
        noise_std: ``diveq``'s and ``sf_diveq``'s noise standard deviation; 1e-3 is the DiVeQ
            authors' default (their ``noise_var``, which their code uses as a standard deviation).
        sigma2: ``diveq``'s noise as a variance instead (noise_std = sqrt(sigma2)); vqbench's
            convention before 0.2. Give one of the two.
        ema_decay: ``ema``'s moving-average decay, in [0, 1).
        rotation_form: ``rotation`` with several codebooks: ``"total"`` (rotate x onto the total
            x_hat) or ``"per_stage"`` (vector-quantize-pytorch's ResidualVQ: each codebook's
            target onto its codeword, summed); see vqbench/training/rotation.py.
        generator: draws the estimator's noise (None: torch's global generator).
        **options: keys of an estimator registered from outside (its ``Config``'s own keys).

    Training hooks: the estimator's after-step work (EMA's codebook update) and the replacement
    window run in :meth:`after_step`; call it after your optimizer step, or let the next
    ``forward`` run it for the previous batch (the same updates, one call later).
    """

    def __init__(self, quantizer: Quantizer, estimator: str | Estimator = "nsvq", beta: float = 0.25,
                 replacement: bool = True, replacement_every: int = 100, discard_threshold: float = 0.01,
                 init: str = "random", temperature: float = 1.0, noise_std: float = DEFAULT_NOISE_STD,
                 sigma2: float | None = None, ema_decay: float = 0.99, rotation_form: str = "total",
                 generator: torch.Generator | None = None, **options: Any):
        super().__init__()
        where = f"vqbench.{type(self).__name__}"
        if init not in INITS:
            raise ValueError(f"{where}: init must be one of {INITS}, got {init!r}")
        if sigma2 is not None:
            if noise_std != DEFAULT_NOISE_STD:
                raise ValueError(f"{where}: give noise_std or sigma2 (a variance), not both")
            if not sigma2 >= 0:
                raise ValueError(f"{where}: sigma2 must be >= 0, got {sigma2}")
            noise_std = math.sqrt(sigma2)
        name = type(self).__name__
        replacement_every = check_integer(name, "replacement_every", replacement_every, 1)
        discard_threshold = check_number(name, "discard_threshold", discard_threshold, 0.0, 1.0)
        beta = check_number(name, "beta", beta, 0.0)
        ema_decay = check_number(name, "ema_decay", ema_decay, 0.0, 1.0, high_open=True)
        temperature = check_number(name, "temperature", temperature, 0.0)
        if temperature == 0:
            raise ValueError(f"{where}: temperature must be > 0, got {temperature!r}")
        self.quantizer = quantizer
        if isinstance(estimator, Estimator):
            if estimator.quantizer is not quantizer:
                raise ValueError(f"{where}: the estimator was built for another quantizer")
            self.estimator = estimator
        else:
            try:
                cls = estimator_class(estimator)
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
            unknown = sorted(set(options) - set(cls.own_keys()))
            if unknown:
                raise TypeError(f"{where}: estimator {estimator!r} has no option {unknown[0]!r} "
                                f"(its own: {', '.join(cls.own_keys()) or 'none'})")
            settings = {**cls.defaults(), "beta": beta, "temperature": temperature, "noise_std": noise_std,
                        "ema_decay": ema_decay, "rotation_form": rotation_form, **options}
            try:
                cls.check(settings)
                self.estimator = cls(quantizer, settings, generator)
            except ValueError as err:  # ConfigError too: name this layer
                raise ValueError(f"{where}: {err}") from None
        if not self.estimator.codebooks_by_gradient:
            quantizer.codebooks.requires_grad_(False)
        self.init = init
        self.replacer: CodewordReplacer | None = None
        if replacement:
            self.replacer = CodewordReplacer(quantizer, num_batches=replacement_every,
                                             discard_threshold=discard_threshold, noise=ReplacementConfig.noise)
        self.register_buffer("initialized", torch.tensor(False))
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def estimator_name(self) -> str:
        """The estimator's registry name."""
        return self.estimator.name

    @property
    def replacement(self) -> bool:
        """Whether dead codewords are replaced in training."""
        return self.replacer is not None

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
    def bits(self) -> float:
        """Bits per vector, M log2 K."""
        return self.quantizer.bits

    @property
    def codebooks(self) -> nn.Parameter:
        """The codebooks [M, K, d] (d = D, or D/M for PVQ)."""
        return self.quantizer.codebooks

    @property
    def codewords_replaced(self) -> int:
        """Codewords replaced so far (``replacement=True``)."""
        return 0 if self.replacer is None else self.replacer.total_replaced

    def extra_repr(self) -> str:
        """The settings printed in the module's repr."""
        return f"estimator={self.estimator_name}, replacement={self.replacement}, init={self.init}"

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
    def init_from_data(self, x: torch.Tensor, seed: int = 0, how: str = "data") -> None:
        """Set the codebooks from example vectors x [..., D]: ``how="data"`` (the quantizer's data
        initialisation: random training vectors, or residuals for RVQ/AVQ), ``"random"`` or
        ``"kmeans"`` (see the ``init`` argument). Marks the layer initialised."""
        if how not in INITS:
            raise ValueError(f"vqbench.{type(self).__name__}: init must be one of {INITS}, got {how!r}")
        flat = self._flatten(x, "init_from_data's x").detach().to(self.codebooks)
        if flat.shape[0] == 0:
            raise ValueError(f"vqbench.{type(self).__name__}: init_from_data needs at least one vector, "
                             f"got shape {tuple(x.shape)}")
        LAYER_INITS[how](self.quantizer, flat, seed, f"vqbench.{type(self).__name__}")
        self.estimator.codewords_replaced(torch.ones(self.codebooks.shape[:2], dtype=torch.bool,
                                                     device=self.codebooks.device))
        self.initialized.fill_(True)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> Quantized:
        """Quantize x [..., D] -> :class:`Quantized` ``(x_hat [..., D], codes [..., M], aux_loss)``."""
        flat = self._flatten(x)
        if flat.shape[0] == 0:  # nothing to quantize: no estimator, no EMA or replacement step
            codes = self.quantizer.encode(flat.detach())
            out = flat + (self.quantizer.decode(codes) - flat).detach()
            return Quantized(out.view(x.shape), codes.view(*x.shape[:-1], self.num_codebooks), flat.new_zeros(()))
        self.after_step()  # the previous training batch's hooks, if after_step was not called
        if self.training and not bool(self.initialized):
            self.init_from_data(flat, how=self.init)
        codes = self.quantizer.encode(flat.detach())
        if not self.training:
            out, aux = self.quantizer.decode(codes), flat.new_zeros(())
        else:
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.estimator.codebooks_by_gradient):
                x_hat = self.quantizer.decode(codes)
            out, codes, aux = self.estimator(flat, x_hat, codes)
            self._pending = (flat.detach(), codes)
        return Quantized(out.view(x.shape), codes.view(*x.shape[:-1], self.num_codebooks), aux)

    @torch.no_grad()
    def after_step(self, batches_left: int | None = None) -> None:
        """After the optimizer step of a training batch: the estimator's after-step hook (EMA's
        codebook update) and the replacement window (closing it after every
        ``replacement_every`` batches; none within the last two windows when ``batches_left``,
        the training batches still to come, is given). Does nothing if no training forward
        is pending."""
        if self._pending is None:
            return
        x, codes = self._pending
        self._pending = None
        self.estimator.after_step(x, codes)
        if self.replacer is not None:
            self.replacer.record(codes)
            replaced = self.replacer.maybe_replace(batches_left)
            if replaced is not None:
                self.estimator.codewords_replaced(replaced)
