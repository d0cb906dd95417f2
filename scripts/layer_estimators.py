"""Train the README's library example (encoder -> quantizer layer -> decoder on 32-dim vectors
lying on an 8-dim subspace) once per estimator and quantizer layer; print the test MSE.

    OMP_NUM_THREADS=1 python scripts/layer_estimators.py --steps 1000 --seeds 0

A quick check that every estimator trains inside a model, not the estimator benchmark.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import vqbench


def run(layer_name: str, estimator: str, steps: int, seed: int, temperature: float = 1.0) -> float:
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 16))
    kwargs = dict(num_codebooks=4, codebook_size=16, estimator=estimator, replacement=True,
                  temperature=temperature)
    quantizer = getattr(vqbench, layer_name)(dim=16, **kwargs)
    decoder = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 32))
    opt = torch.optim.Adam([*encoder.parameters(), *quantizer.parameters(), *decoder.parameters()], lr=1e-3)
    mixing = torch.randn(8, 32)
    for _ in range(steps):
        x = torch.randn(256, 8) @ mixing
        x_hat, _, aux_loss = quantizer(encoder(x))
        loss = (decoder(x_hat) - x).pow(2).mean() + aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    quantizer.eval()
    with torch.no_grad():
        x = torch.randn(4096, 8) @ mixing
        return (decoder(quantizer(encoder(x)).x_hat) - x).pow(2).mean().item() / x.var().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--layers", nargs="+", default=["RVQ", "PVQ", "AVQ"])
    parser.add_argument("--estimators", nargs="+", default=list(vqbench.ESTIMATORS))
    parser.add_argument("--temperature", type=float, default=1.0, help="the gumbel estimator's temperature")
    args = parser.parse_args()
    print("layer  estimator  test MSE / data variance (mean over seeds)  seconds")
    for layer_name in args.layers:
        for estimator in args.estimators:
            start = time.perf_counter()
            values = [run(layer_name, estimator, args.steps, seed, args.temperature) for seed in args.seeds]
            print(f"{layer_name:5s}  {estimator:9s}  {statistics.fmean(values):.4f}  "
                  f"{time.perf_counter() - start:.1f}", flush=True)


if __name__ == "__main__":
    main()
