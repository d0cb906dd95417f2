"""The paper's figures as data: which of our runs make each figure, and how a run becomes points.

A `Panel` names one published figure (`vqbench.paper.reference.FIGURES`), the preset(s)
whose runs feed it (`paper.figure` in the run's config) with extra config filters, and a
function that turns one finished run into points `(method, x, value, flags)`. Methods are
named like the reference series: `avq`, `rvq`, `pvq` for NSVQ-trained quantizers (the paper's
"proposed"), `<quantizer>_<optimizer>` for other optimizers, `faiss_<name>` for the faiss
anchors an ANN run carries. `COMPARE` says which of our methods stands beside which
published series (e.g. our AQ-style `avq_kmeans` beside the paper's "AVQ baseline").

A panel's `kind` (`PanelKind`) says how its page is made: from runs (`MEASURED`), from toy
runs with the toy pages' scale-free columns and evidence (`TOY`), or counted, not measured
(`COMPLEXITY`: Fig. 4c, 6b, evaluated at the quantizer settings behind the published figure in
vqbench's own count of the code it runs and in the paper's convention; complexity_page.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..metrics.images import psnr_of_mean_mse
from ..run.runs import lookup
from ..training import OPTIMIZERS
from .psnr_evidence import psnr_conventions
from .ssim_evidence import ssim_at_equal_psnr

Point = tuple[str, float, float, dict[str, float], tuple[str, ...]]  # method, x, value, extras, flags

# Published series name -> our method that stands beside it (a panel may say otherwise).
COMPARE = {"avq": "avq", "rvq": "rvq", "pvq": "pvq"}
# Fig. 5's classical baselines: Additive Quantization (Babenko & Lempitsky) is our AVQ trained by
# alternating beam-search encoding and least squares; product quantization is PVQ by k-means.
SIFT_BASELINES = {**COMPARE, "avq_baseline": "avq_kmeans", "pvq_baseline": "pvq_kmeans"}
# Fig. 4: the published AVQ beside our AVQ with the published code's search (the preset's choice,
# conf/paper/fig4.yaml); the textbook search's runs are listed as avq.
FIG4_COMPARE = {**COMPARE, "avq": "avq_authors"}
# Fig. 6a's RVQ baseline: faiss's residual quantizer (greedy), run in the same job as ours.
RQ_BASELINE = {**COMPARE, "rvq_baseline": "faiss_rq"}


# A codebook counts as under-used when fewer than this fraction of its codewords coded any
# test vector; such points are flagged in the report (training far from convergence, or
# more codewords than test vectors can show).
USAGE_FLAG = 0.9


def method_name(run: Mapping[str, Any]) -> str:
    """The quantizer's name, its search when not the default (``avq_authors``: AVQ with the
    published code's search), and its optimizer's series suffix (none for the paper's NSVQ)."""
    q, opt = lookup(run, "quantizer.name"), lookup(run, "optimizer.name")
    search = lookup(run, "quantizer.search") or "beam"  # records older than the setting: beam
    if search != "beam":
        q = f"{q}_{search}"
    spec = OPTIMIZERS.get(opt)  # a run of an optimizer this install does not have: name + suffix
    return q + (spec.series_suffix if spec is not None else f"_{opt}")


def _usage_flags(run: Mapping[str, Any]) -> tuple[str, ...]:
    usage = lookup(run, "metrics.usage_mean")
    if usage is not None and usage < USAGE_FLAG:
        return (f"codewords used {usage:.0%}",)
    return ()


def toy_points(figure: str) -> Callable[[Mapping[str, Any]], Iterator[Point]]:
    """One point per toy run: MSE in `figure`'s published units (see `vqbench.paper.conventions`)."""
    from ..paper.conventions import relative_mse, to_paper_units

    def points(run: Mapping[str, Any]) -> Iterator[Point]:
        m = run["metrics"]
        variance = m.get("data_variance", float(run["dataset"]["dim"]))  # unit variance per dim
        extras = {"mse": m["mse"], "mse_rel": relative_mse(m["mse"], variance), "rd_gap_db": m["rd_gap_db"],
                  "rd_bound_mse": m["rd_bound_mse"], "data_variance": variance}
        yield method_name(run), m["bits"], to_paper_units(m["mse"], variance, figure), extras, _usage_flags(run)

    return points


def metric_points(key: str) -> Callable[[Mapping[str, Any]], Iterator[Point]]:
    """One point per run: `metrics.<key>` at `metrics.bits`."""

    def points(run: Mapping[str, Any]) -> Iterator[Point]:
        yield method_name(run), run["metrics"]["bits"], run["metrics"][key], {}, _usage_flags(run)

    return points


def pooled_psnr(metrics: Mapping[str, Any], genuine: bool) -> float:
    """The PSNR of a VQ-VAE run's pooled test MSE (on dataset.genuine_test when `genuine`):
    `psnr_pooled[_genuine]`, or, in a record written before that metric, from its `mse[_genuine]`."""
    key = "psnr_pooled_genuine" if genuine else "psnr_pooled"
    if key in metrics:
        return float(metrics[key])
    mse = metrics.get("mse_genuine" if genuine else "mse")
    return psnr_of_mean_mse(float(mse)) if mse is not None else math.nan


def _image_run(run: Mapping[str, Any], key: str) -> tuple[Mapping[str, Any], bool, dict[str, float], tuple[str, ...]]:
    """A VQ-VAE run's metrics, whether it was scored on genuine pixels, the extras every Fig. 4
    panel shows (``jpeg``: the metric on the run's own test split; ``wall_s``) and its flags."""
    m = run["metrics"]
    genuine = f"{key}_genuine" in m
    extras = {"wall_s": float(lookup(run, "timings.total") or math.nan)}
    flags = _usage_flags(run) + (() if genuine else ("scored on the run's test split only (no genuine_test)",))
    return m, genuine, extras, flags


def image_points(key: str, standard: str | None = None) -> Callable[[Mapping[str, Any]], Iterator[Point]]:
    """One point per VQ-VAE run: `metrics.<key>_genuine` (scored on the test images' original
    pixels, dataset.genuine_test) at `metrics.bits`, else `metrics.<key>` with a flag. Extras:
    ``jpeg`` (`<key>` on the run's own test split), ``wall_s`` (the run's wall time) and, with
    `standard`, ``standard`` (that metric on the same images: the other SSIM convention) and
    ``psnr`` (the pooled PSNR on the same images: Fig. 4b's value)."""

    def points(run: Mapping[str, Any]) -> Iterator[Point]:
        m, genuine, extras, flags = _image_run(run, key)
        extras["jpeg"] = m[key]
        if standard is not None:
            extras["standard"] = m.get(f"{standard}_genuine" if genuine else standard, math.nan)
            extras["psnr"] = pooled_psnr(m, genuine)
        yield method_name(run), m["bits"], m[f"{key}_genuine"] if genuine else m[key], extras, flags

    return points


def psnr_points(run: Mapping[str, Any]) -> Iterator[Point]:
    """Fig. 4b's point of a VQ-VAE run: the pooled PSNR (on genuine pixels where the run has them).
    Extras: ``per_image`` (the mean of each image's PSNR on the same images), ``jpeg`` (the pooled
    PSNR of the run's own test split) and ``wall_s``."""
    m, genuine, extras, flags = _image_run(run, "psnr")
    extras["per_image"] = m["psnr_genuine" if genuine else "psnr"]
    extras["jpeg"] = pooled_psnr(m, False)
    yield method_name(run), m["bits"], pooled_psnr(m, genuine), extras, flags


def recall_points(ts: tuple[int, ...]) -> Callable[[Mapping[str, Any]], Iterator[Point]]:
    """recall@T of an ANN run for each T, for our quantizer and every faiss anchor it carries."""

    def points(run: Mapping[str, Any]) -> Iterator[Point]:
        m = run["metrics"]
        anchors = sorted({k.split(".")[1] for k in m if k.startswith("baseline.")})
        for t in ts:
            if f"recall@{t}" in m:
                yield method_name(run), t, m[f"recall@{t}"], {}, _usage_flags(run)
            for name in anchors:
                value = m.get(f"baseline.{name}.recall@{t}")
                if value is not None:
                    yield f"faiss_{name}", t, value, {}, ()

    return points


class PanelKind(Enum):
    """How a panel's page is made (see the module docstring)."""

    MEASURED = "measured"  # points from finished runs
    TOY = "toy"  # points from toy runs (`toy_points`): also the scale-free columns and the toy evidence sections
    COMPLEXITY = "complexity"  # counted at the paper's settings, no runs (complexity_page.py)


@dataclass(frozen=True)
class Panel:
    figure: str  # name in vqbench.paper.reference.FIGURES
    presets: tuple[str, ...] = ()  # values of `paper.figure` whose runs feed this panel
    where: Mapping[str, Any] = field(default_factory=dict)  # further config filters (dotted path -> value)
    points: Callable[[Mapping[str, Any]], Iterator[Point]] | None = None
    unit: str = ""  # y-axis label
    log_y: bool = False
    higher_is_better: bool = False
    kind: PanelKind = PanelKind.MEASURED
    extra_columns: Mapping[str, str] = field(default_factory=dict)  # extras shown as columns: extra -> column
    evidence: Callable[[Any], list[str]] | None = None  # more page sections from the FigureData
    compare: Mapping[str, str] = field(default_factory=lambda: dict(COMPARE))
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, PanelKind):
            raise TypeError(f"panel {self.figure}: kind {self.kind!r} is not a PanelKind "
                            f"({', '.join(k.name for k in PanelKind)})")
        if self.kind is PanelKind.COMPLEXITY and (self.points is not None or self.presets):
            raise ValueError(f"panel {self.figure}: a complexity panel is counted, not measured from runs; "
                             "it takes no points or presets")

    def selects(self, run: Mapping[str, Any]) -> bool:
        if self.presets and lookup(run, "paper.figure") not in self.presets:
            return False
        return all(lookup(run, k) == v for k, v in self.where.items())


def toy_panel(figure: str, presets: tuple[str, ...], where: Mapping[str, Any], **kw: Any) -> Panel:
    """A toy panel: points from `toy_points(figure)`, MSE in the paper's units, kind TOY."""
    return Panel(figure, presets, where, toy_points(figure), unit="MSE (the paper's units)", kind=PanelKind.TOY, **kw)


_FIG4_COLUMNS = {"jpeg": "ours_jpeg_test_mean", "wall_s": "wall_s_per_run"}
_FIG4A_COLUMNS = {"standard": "ours_standard_ssim_mean", **_FIG4_COLUMNS}
_FIG4B_COLUMNS = {"per_image": "ours_per_image_psnr_mean", **_FIG4_COLUMNS}
_FIG4_NOTE = ("ours_* columns are scored on dataset.genuine_test (the test images' original, lossless pixels) "
              "when the runs set it; ours_jpeg_test_mean on the run's own test split (e.g. the 10,000 JPEG "
              "images of the training copy), which flatters PSNR.")
_FIG4A_NOTE = (_FIG4_NOTE + " The SSIM the tolerance uses (ours_mean) is `ssim_legacy`: scikit-image < 0.20's "
               "default call on float images (uniform 7x7 window, sample covariance, data_range 2); the standard SSIM "
               "(Gaussian 11x11, data_range 1) is ours_standard_ssim_mean. Which convention the authors used is an "
               "inference (their code holds no SSIM): the section 'SSIM at equal PSNR' measures both against the "
               "paper's own PSNR-SSIM curve.")
_FIG4B_NOTE = (_FIG4_NOTE + " The PSNR the tolerance uses (ours_mean) is that of the test set's pooled MSE, "
               "10 log10(1 / mean MSE); the mean of each image's PSNR is ours_per_image_psnr_mean. Which convention "
               "the authors used is an inference (their code holds no PSNR): the section 'PSNR conventions' "
               "measures both against the paper.")
_RECALL5 = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_RECALL6 = (1, 10, 100, 1000, 10000)

PANELS: dict[str, Panel] = {
    "fig2a": toy_panel("fig2a", ("fig2a",), {"experiment.name": "toy"}),
    "fig2b": toy_panel("fig2b", ("fig2b", "fig3"), {"dataset.kind": "uncorrelated", "dataset.dim": 64}),
    "fig3_64": toy_panel("fig3_64", ("fig2b", "fig3"), {"dataset.kind": "uncorrelated", "dataset.dim": 64},
                         note="The paper's Fig. 3 (64 dims) and Fig. 2b hold the same numbers; both panels read "
                              "the uncorrelated 64-dim runs of either preset."),
    "fig3_128": toy_panel("fig3_128", ("fig3",), {"dataset.kind": "uncorrelated", "dataset.dim": 128}),
    "fig3_256": toy_panel("fig3_256", ("fig3",), {"dataset.kind": "uncorrelated", "dataset.dim": 256}),
    "fig4a": Panel("fig4a", ("fig4",), {"experiment.name": "vqvae"}, image_points("ssim_legacy", "ssim"),
                   "SSIM (legacy convention)", higher_is_better=True, extra_columns=_FIG4A_COLUMNS, note=_FIG4A_NOTE,
                   evidence=ssim_at_equal_psnr, compare=FIG4_COMPARE),
    "fig4b": Panel("fig4b", ("fig4",), {"experiment.name": "vqvae"}, psnr_points, "PSNR (dB, pooled MSE)",
                   higher_is_better=True, extra_columns=_FIG4B_COLUMNS, note=_FIG4B_NOTE, evidence=psnr_conventions,
                   compare=FIG4_COMPARE),
    "fig4c": Panel("fig4c", unit="log10 WMOPS", kind=PanelKind.COMPLEXITY, compare=FIG4_COMPARE),
    "fig5": Panel("fig5", ("fig5",), {"experiment.name": "ann"}, recall_points(_RECALL5), "recall@T",
                  higher_is_better=True, compare=SIFT_BASELINES),
    "fig6a": Panel("fig6a", ("fig6",), {"experiment.name": "ann"}, recall_points(_RECALL6), "recall@T",
                   higher_is_better=True, compare=RQ_BASELINE),
    "fig6b": Panel("fig6b", unit="log10 WMOPS", kind=PanelKind.COMPLEXITY),
}

# The figure presets of conf/paper/ and the panels their runs feed (for `--figure fig3` etc.).
PRESET_PANELS = {
    "fig2a": ("fig2a",),
    "fig2b": ("fig2b",),
    "fig2": ("fig2a", "fig2b"),
    "fig3": ("fig3_64", "fig3_128", "fig3_256"),
    "fig4": ("fig4a", "fig4b", "fig4c"),
    "fig5": ("fig5",),
    "fig6": ("fig6a", "fig6b"),
}


def panels(names: list[str]) -> list[Panel]:
    """Panels for figure or preset names (`fig3` = its three panels; `all` = every panel)."""
    out: list[str] = []
    for name in names:
        if name == "all":
            out.extend(PANELS)
        elif name in PRESET_PANELS:
            out.extend(PRESET_PANELS[name])
        elif name in PANELS:
            out.append(name)
        else:
            known = sorted(set(PANELS) | set(PRESET_PANELS) | {"all"})
            raise ValueError(f"unknown figure {name!r} (known: {', '.join(known)})")
    return [PANELS[n] for n in dict.fromkeys(out)]
