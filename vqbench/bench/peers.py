"""Other packages' quantizer layers (the estimator benchmark's peers) behind one interface, so
vqbench's toy and VQ-VAE loops can train them like their own layers.

Peers (``pip install -e '.[peers]'``):

* ``diveq``: the DiVeQ authors' package (PyPI ``diveq``), ``ResidualDIVEQ`` (RVQ) and
  ``ProductDIVEQ`` (PVQ). Counterpart: our ``diveq`` estimator on the same quantizer.
* ``vqp``: vector-quantize-pytorch's ``ResidualVQ`` (RVQ) in three variants: ``default`` (EMA
  codebooks, rotation trick on the input; counterpart our ``rotation``), ``no_rotation``
  (``rotation_trick=False``: EMA codebooks, straight-through input; counterpart our ``ema``) and
  ``diveq`` (``diveq=True``: codebooks by gradient through DiVeQ; counterpart our ``diveq``).

Each peer runs at its own **defaults** (only the sizes given) or at **matched** settings: every
setting that has a counterpart in our run's config set to our value (``effective`` lists them,
keyed by our config key, so a page can name what still differs): the codebooks' start (ours,
copied in), DiVeQ's noise standard deviation, EMA decay and commitment weight, and (the authors'
package, whose replacement is ours: codewords used in fewer than a fraction of the batches of a
window become perturbed copies of used ones) the replacement window and threshold.
vector-quantize-pytorch's ResidualVQ takes no DiVeQ noise argument (it calls its
``directional_reparam`` with a variance of 5e-3); matched runs call it with our variance.

``layer(x [N, D]) -> (x_out, codes [N, M], aux_loss)`` in training; ``hard(x) -> (x_hat,
codes)`` is the peer's own inference; ``codebooks()`` is [M, K, d] (copied into our quantizer
to evaluate a VQ-VAE by our hard quantizer, which encodes as both peers do: greedy nearest
codeword per stage for RVQ, per subspace for PVQ).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

PEER_PACKAGES = {"diveq": "diveq", "vqp": "vector_quantize_pytorch"}
DISTRIBUTIONS = {"diveq": "diveq", "vqp": "vector-quantize-pytorch"}
SETTINGS = ("defaults", "matched")


@dataclass(frozen=True)
class PeerSpec:
    """One peer layer: package, quantizer, variant, and the estimator of ours it is compared with."""

    peer: str  # "diveq" | "vqp"
    quantizer: str  # "rvq" | "pvq"
    variant: str  # "diveq" (authors' package), "default" | "no_rotation" | "diveq" (vqp)
    counterpart: str  # our optimizer name

    @property
    def name(self) -> str:
        return f"{self.peer}-{self.variant}" if self.peer == "vqp" else self.peer

    @property
    def label(self) -> str:
        """How a page names the peer."""
        return {
            ("diveq", "diveq"): f"diveq {version('diveq')} {DIVEQ_LAYERS.get(self.quantizer)}",
            ("vqp", "default"): f"vector-quantize-pytorch {version('vqp')} ResidualVQ (default)",
            ("vqp", "no_rotation"): f"vector-quantize-pytorch {version('vqp')} ResidualVQ(rotation_trick=False)",
            ("vqp", "diveq"): f"vector-quantize-pytorch {version('vqp')} ResidualVQ(diveq=True)",
        }[(self.peer, self.variant)]


# The authors' package's layer class for each quantizer it has (our quantizer name -> diveq.<class>).
DIVEQ_LAYERS = {"rvq": "ResidualDIVEQ", "pvq": "ProductDIVEQ"}

PEERS = (
    PeerSpec("diveq", "rvq", "diveq", "diveq"),
    PeerSpec("diveq", "pvq", "diveq", "diveq"),
    PeerSpec("vqp", "rvq", "default", "rotation"),
    PeerSpec("vqp", "rvq", "no_rotation", "ema"),
    PeerSpec("vqp", "rvq", "diveq", "diveq"),
)

# How each peer's training differs from its counterpart's beyond the settings (read from the peers' code).
MECHANISMS = {
    ("diveq", "diveq"): "The same estimator (x + ||x^ - x|| sg[(x^ - x + v)/||.||], v ~ N(0, noise_var^2 I), noise drawn "
                        "from torch's global generator, ours from a generator of the run's own); the same replacement "
                        "rule (codewords used in fewer than a fraction of a window's batches become copies of used "
                        "ones), with copies perturbed by 1e-9 absolute (ours: 1% of the codebook's std).",
    ("vqp", "default"): "Its codebooks move by EMA of their assigned vectors (our rotation: Adam on the codebook "
                        "loss) and its rotation trick rotates each stage's target onto its own codeword (ours: "
                        "`rotation_form=total`, onto the total x^); no dead-code replacement by default. On raw "
                        "vectors (toy) the input gradient plays no part: there only the codebook updates differ.",
    ("vqp", "no_rotation"): "EMA codebooks with a straight-through input, as our ema (x + sg(x^ - x)); its EMA "
                            "is Laplace-smoothed per stage (eps 1e-5) and it replaces no dead codes by default.",
    ("vqp", "diveq"): "The same estimator on the total x^ (one direction for all stages, as ours); its noise is "
                      "sqrt(5e-3) = 0.071 in std unless matched; its codebooks start kaiming-uniform and no dead "
                      "codes are replaced (ours: replacement every window).",
}


def available(peer: str) -> bool:
    """Whether the peer's package can be imported (the optional extra ``peers``)."""
    try:
        importlib.import_module(PEER_PACKAGES[peer])
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def version(peer: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DISTRIBUTIONS[peer])
    except PackageNotFoundError:
        return None


def _stack_codes(indices: Any) -> torch.Tensor:
    if isinstance(indices, (list, tuple)):
        return torch.stack(list(indices), dim=-1)
    return indices


class PeerLayer(nn.Module):
    """A peer's layer; ``effective`` maps our config keys to the values the peer runs with."""

    def __init__(self, spec: PeerSpec, module: nn.Module, effective: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.module = module
        self.effective = effective

    def after_step(self, batches_left: int = 0) -> None:
        """The peers update EMA state and replace codewords inside their forward: nothing here."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def hard(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def codebooks(self) -> torch.Tensor:
        raise NotImplementedError

    def set_codebooks(self, codebooks: torch.Tensor) -> None:
        raise NotImplementedError


class AuthorsDiVeQ(PeerLayer):
    """diveq.ResidualDIVEQ / diveq.ProductDIVEQ."""

    def forward(self, x):
        z_q, indices, _ = self.module(x)
        return z_q, _stack_codes(indices), x.new_zeros(())

    @torch.no_grad()
    def hard(self, x):
        z_q, indices, _ = self.module.inference(x)
        return z_q, _stack_codes(indices)

    def codebooks(self):
        return self.module.codebook.detach()

    @torch.no_grad()
    def set_codebooks(self, codebooks):
        self.module.codebook.data.copy_(codebooks.to(self.module.codebook))


class VectorQuantizePytorch(PeerLayer):
    """vector_quantize_pytorch.ResidualVQ on [N, D] inputs (as a batch of one sequence)."""

    def __init__(self, spec, module, effective, noise_variance: float | None):
        super().__init__(spec, module, effective)
        self.noise_variance = noise_variance  # None: the package's own DiVeQ variance

    @contextlib.contextmanager
    def _noise(self):
        """ResidualVQ calls its module's directional_reparam(x, q) without a variance: matched
        runs call it with ours for the duration of a forward."""
        if self.noise_variance is None:
            yield
            return
        residual_vq = importlib.import_module("vector_quantize_pytorch.residual_vq")
        original = residual_vq.directional_reparam
        residual_vq.directional_reparam = functools.partial(original, noise_variance=self.noise_variance)
        try:
            yield
        finally:
            residual_vq.directional_reparam = original

    def forward(self, x):
        with self._noise():
            quantized, indices, losses = self.module(x.unsqueeze(0))
        # the commitment losses are means over elements (F.mse_loss), one per stage
        return quantized.squeeze(0), indices.squeeze(0), losses.sum()

    @torch.no_grad()
    def hard(self, x):
        was_training = self.module.training
        self.module.eval()
        try:
            quantized, indices, _ = self.module(x.unsqueeze(0))
        finally:
            self.module.train(was_training)
        return quantized.squeeze(0), indices.squeeze(0)

    def codebooks(self):
        return torch.stack([layer._codebook.embed.detach()[0] for layer in self.module.layers])

    @torch.no_grad()
    def set_codebooks(self, codebooks):
        for layer, start in zip(self.module.layers, codebooks):
            book = layer._codebook
            book.embed.data.copy_(start.to(book.embed).unsqueeze(0))
            book.embed_avg.data.copy_(book.embed.data * book.cluster_size.unsqueeze(-1))


def build_peer(spec: PeerSpec, setting: str, dim: int, num_codebooks: int, codebook_size: int,
               ocfg: Mapping[str, Any], start: torch.Tensor | None = None) -> PeerLayer:
    """The peer's layer for D = ``dim``, M codebooks of K codewords, at ``setting`` (defaults |
    matched); ``ocfg`` is our counterpart run's optimizer section and ``start`` our initial
    codebooks [M, K, d] (matched: copied into the peer)."""
    if setting not in SETTINGS:
        raise ValueError(f"peer setting must be one of {SETTINGS}, got {setting!r}")
    matched = setting == "matched"
    if spec.peer == "diveq":
        import diveq

        cls = getattr(diveq, DIVEQ_LAYERS[spec.quantizer])
        kwargs: dict[str, Any] = dict(allow_warning=False, verbose=False)
        if matched:
            rep = ocfg["replacement"]
            kwargs.update(noise_var=float(ocfg["noise_std"]), replacement_iters=int(rep["num_batches"]),
                          discard_threshold=float(rep["discard_threshold"]), codebook_reset=bool(rep["enabled"]))
        module = cls(num_embeddings=codebook_size, embedding_dim=dim, num_codebooks=num_codebooks, **kwargs)
        effective = {
            "optimizer.noise_std": module.noise_var,  # their noise_var is the Normal's std
            "optimizer.replacement.enabled": module.codebook_reset,
            "optimizer.replacement.num_batches": module.replacement_iters,
            "optimizer.replacement.discard_threshold": module.discard_threshold,
            "optimizer.init": "ours (copied)" if matched else "U(0, 1/K)",
        }
        layer: PeerLayer = AuthorsDiVeQ(spec, module, effective)
    elif spec.peer == "vqp":
        from vector_quantize_pytorch import ResidualVQ

        kwargs = {}
        if spec.variant == "no_rotation":
            kwargs["rotation_trick"] = False
        if spec.variant == "diveq":
            kwargs["diveq"] = True
        if matched and spec.variant != "diveq":
            kwargs["commitment_weight"] = float(ocfg["beta"])
            if "ema_decay" in ocfg:  # our ema's decay; our rotation moves codebooks by Adam, no decay to match
                kwargs["decay"] = float(ocfg["ema_decay"])
        module = ResidualVQ(dim=dim, num_quantizers=num_codebooks, codebook_size=codebook_size, **kwargs)
        first = module.layers[0]
        noise = float(ocfg["noise_std"]) ** 2 if matched and spec.variant == "diveq" else None
        effective = {"optimizer.init": "ours (copied)" if matched else "kaiming uniform",
                     "optimizer.replacement.enabled": first._codebook.threshold_ema_dead_code > 0}
        if spec.variant == "diveq":
            effective["optimizer.noise_std"] = (noise if noise is not None else 5e-3) ** 0.5
        else:
            effective["optimizer.beta"] = first.commitment_weight
            effective["optimizer.ema_decay"] = first._codebook.decay
        layer = VectorQuantizePytorch(spec, module, effective, noise)
    else:
        raise ValueError(f"unknown peer {spec.peer!r} (known: {', '.join(PEER_PACKAGES)})")
    if matched and start is not None:
        layer.set_codebooks(start)
    return layer
