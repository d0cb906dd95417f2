"""Plain PyTorch references for scripts/bench.py: NSVQ training written the straightforward way.

* encoders: per-stage argmin over ``torch.cdist`` (RVQ: stage after stage on the residual; PVQ:
  one cdist per subspace); AVQ: a Python loop over the M beam-search steps, each scoring every
  (beam, unused codeword) pair by ``torch.cdist`` and keeping the W best, without merging
  reorderings of the same codeword set. Vectorised over vectors and beams, so more generous to
  the reference than a loop over beams would be. Chunked over vectors (memory only).
* ``plain_nsvq_train``: Adam on one [M, K, d] parameter; per step a random batch, the hard codes
  (no gradient), x_hat by indexing, noise substitution x~ = x + ||x - x_hat|| v/||v|| with
  v ~ N(0, I), loss mean ||x - x~||^2, backward, Adam step. No codeword replacement, no schedule.
* ``patch_plain_encoders``: makes vqbench's RVQ/PVQ/AVQ classes encode with the functions above
  (the VQ-VAE rows: the same model and training loop, only the encoder differs).

Only torch here: it runs unchanged against any revision of vqbench (``--compare``).
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 24  # distance-matrix elements per chunk (64 MB float32)


@torch.no_grad()
def plain_encode_rvq(x: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    residual = x.clone()
    codes = []
    for m in range(codebooks.shape[0]):
        idx = torch.cdist(residual, codebooks[m]).argmin(1)
        residual = residual - codebooks[m][idx]
        codes.append(idx)
    return torch.stack(codes, 1)


@torch.no_grad()
def plain_encode_pvq(x: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    M, _, d = codebooks.shape
    return torch.stack([torch.cdist(x[:, m * d:(m + 1) * d], codebooks[m]).argmin(1) for m in range(M)], 1)


@torch.no_grad()
def plain_encode_avq(x: torch.Tensor, codebooks: torch.Tensor, beam: int) -> torch.Tensor:
    M, K, D = codebooks.shape
    chunk = max(1, CHUNK_ELEMENTS // (beam * M * K))
    return torch.cat([_avq_chunk(x[i:i + chunk], codebooks, beam) for i in range(0, x.shape[0], chunk)])


def _avq_chunk(x: torch.Tensor, codebooks: torch.Tensor, beam: int) -> torch.Tensor:
    M, K, D = codebooks.shape
    flat = codebooks.reshape(M * K, D)
    n = x.shape[0]
    rows = torch.arange(n).unsqueeze(1)
    residual = x.unsqueeze(1)  # [n, beams, D]
    codes = torch.full((n, 1, M), -1, dtype=torch.long)
    for _ in range(M):
        b = residual.shape[1]
        dist = torch.cdist(residual.reshape(n * b, D), flat).pow(2).view(n, b, M, K)
        dist = dist.masked_fill((codes >= 0).unsqueeze(3), float("inf"))  # each codebook once
        best = dist.view(n, b * M * K).topk(min(beam, b * M * K), dim=1, largest=False).indices
        parent, j = best // (M * K), best % (M * K)
        residual = residual[rows, parent] - flat[j]
        codes = codes[rows, parent].clone()
        codes.scatter_(2, (j // K).unsqueeze(2), (j % K).unsqueeze(2))
    return codes[:, 0]


def plain_encode(name: str, x: torch.Tensor, codebooks: torch.Tensor, beam: int) -> torch.Tensor:
    if name == "rvq":
        return plain_encode_rvq(x, codebooks)
    if name in ("pvq", "vq"):
        return plain_encode_pvq(x, codebooks)
    if name == "avq":
        return plain_encode_avq(x, codebooks, beam)
    raise ValueError(f"no plain encoder for {name!r}")


def plain_decode(name: str, codebooks: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    M = codebooks.shape[0]
    chosen = codebooks[torch.arange(M), codes]  # [N, M, d]
    return chosen.reshape(codes.shape[0], -1) if name in ("pvq", "vq") else chosen.sum(1)


def plain_nsvq_train(name: str, shape: tuple[int, int, int], data: torch.Tensor, steps: int, batch: int,
                     lr: float, beam: int, seed: int) -> torch.Tensor:
    """NSVQ training of `name`'s codebooks of `shape` [M, K, d] on data [N, D]; returns them."""
    g = torch.Generator().manual_seed(seed)
    scale = float(data.std())
    codebooks = torch.nn.Parameter(torch.randn(shape, generator=g) * scale)
    opt = torch.optim.Adam([codebooks], lr=lr * scale)
    for _ in range(steps):
        x = data[torch.randint(data.shape[0], (batch,), generator=g)]
        codes = plain_encode(name, x, codebooks.detach(), beam)
        x_hat = plain_decode(name, codebooks, codes)
        v = torch.randn(x.shape, generator=g)
        x_tilde = x + (x - x_hat).norm(dim=1, keepdim=True) * v / v.norm(dim=1, keepdim=True)
        loss = (x - x_tilde).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return codebooks.detach()


def patch_plain_encoders() -> None:
    """vqbench's RVQ, PVQ, VQ and AVQ encode with the plain functions above from now on."""
    from vqbench.quantizers import AVQ, PVQ, RVQ, VQ

    def make(name):
        def encode(self, x, chunk_size=None, progress=None):
            books = self.codebooks.detach()
            return plain_encode(name, x.to(books), books, getattr(self, "beam_width", 1))
        return encode

    for cls, name in ((RVQ, "rvq"), (PVQ, "pvq"), (VQ, "vq"), (AVQ, "avq")):
        cls.encode = make(name)
