"""The sentences and small tables of a figure page: its head and plot-and-table frame (from the
published figure), and, read from the runs' own configs, the sweep command, settings, data labels,
how our data differ from the paper's, orderings."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from ..common.provenance import fill_added_defaults
from .figure_data import FigureData, Row
from .tables import flatten_config, show_value, to_markdown


def page_head(ref: Any) -> list[str]:
    """The first lines of every figure page: its title and the published figure (`ref`) it stands beside."""
    return [f"# {ref.title}: ours beside the published numbers", "",
            f"Published: Vali & Bäckström, ICASSP 2023, {ref.title} — data: {ref.data}."]


def page_table(ref: Any, png_name: str | None, columns: list[str], rows: list[Any]) -> list[str]:
    """The plot (if drawn) and the page's table."""
    return ([f"![{ref.title}]({png_name})", ""] if png_name else []) + [to_markdown(columns, rows), ""]


def sweep_commands(runs: list[dict[str, Any]]) -> list[str]:
    """`vqbench -m ...` as typed, from each sweep's multirun.yaml (Hydra records it)."""
    cmds = []
    for sweep in sorted({Path(r["path"]).parent for r in runs}):
        f = sweep / "multirun.yaml"
        if f.is_file():
            task = (yaml.safe_load(f.read_text()) or {}).get("hydra", {}).get("overrides", {}).get("task", [])
            cmds.append("vqbench -m " + " ".join(task))
    return sorted(set(cmds))


def settings_lines(runs: list[dict[str, Any]]) -> list[str]:
    """Every config value of the runs: fixed ones once, varying ones with their values."""
    sections = ("experiment", "dataset", "quantizer", "optimizer", "paper", "seed", "device")
    values: dict[str, set] = defaultdict(set)
    for run in runs:
        run = fill_added_defaults(run)  # a record older than a setting ran at its default
        for key, value in flatten_config({k: run[k] for k in sections if k in run}).items():
            values[key].add(json.dumps(value))
    def order(v: Any) -> tuple:  # numbers by value, the rest as text
        return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))

    shown = {k: [show_value(x) for x in sorted((json.loads(v) for v in vs), key=order)] for k, vs in values.items()}
    fixed = [f"`{k}={v[0]}`" for k, v in sorted(shown.items()) if len(v) == 1]
    varied = [f"`{k}` ∈ {{{', '.join(v)}}}" for k, v in sorted(shown.items()) if len(v) > 1]
    return [f"- varied: {'; '.join(varied) or 'nothing'}", f"- fixed: {', '.join(fixed)}"]


def dataset_label(run: dict[str, Any], short: bool = False) -> str:
    """The data a run used, as the page says it; `short`: as a plot title says it
    (e.g. "siftlike1m (100k base)", "CIFAR-10 JPEG copy (10k train)")."""
    d = run.get("dataset", {})
    name = d.get("name")
    if name == "toy":
        extra = {"correlated": f", rho {d.get('rho')}", "lowrank": f", rank {d.get('rank')}"}.get(d.get("kind"), "")
        return f"toy {d.get('kind')} Gaussian, {d.get('dim')} dims{extra}"
    root = d.get("root")
    if short:
        label = {"sift1m": Path(str(root)).name if root else "SIFT1M", "image_folder": "CIFAR-10 JPEG copy",
                 "cifar10": "CIFAR-10"}.get(name) or (Path(str(root)).name if root else str(name))
        sizes = [f"{_thousands(d[k])} {word}" for k, word in (("max_base", "base"), ("max_train", "train"),
                                                                ("max_test", "test")) if d.get(k)]
        return label + (f" ({', '.join(sizes)})" if sizes else "")
    if name == "sift1m":
        label = (f"{Path(str(root)).name} (TEXMEX files {d.get('prefix')}_*)" if root
                 else f"SIFT1M from the data home (TEXMEX files {d.get('prefix')}_*)")
    elif name == "image_folder":
        label = f"{Path(str(root)).name} (an image-folder copy of CIFAR-10, not the original binaries)"
    else:
        label = f"{name}" + (f" from {Path(str(root)).name}" if root else "")
    for key in ("max_base", "max_queries", "max_train", "max_test"):
        if d.get(key):
            label += f", {key} {d[key]}"
    return label


def _thousands(n: int) -> str:
    n = int(n)
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def plot_title(title: str, runs: list[dict[str, Any]], beside: list[dict[str, Any]] | None = None) -> str:
    """A figure's title with the data our runs used on a second line (the published title names the
    paper's data, which ours may not be: a 100k-vector base of siftlike1m is not SIFT1M)."""
    labels = sorted({dataset_label(r, short=True) for r in [*runs, *(beside or [])]})
    return f"{title} (paper)\nours: {'; '.join(labels)}" if labels else title


def comparability(runs: list[dict[str, Any]]) -> list[str]:
    """Sentences on how our runs' data differ from the paper's, read from their configs."""
    out = []
    for d in {json.dumps(r.get("dataset", {}), sort_keys=True) for r in runs}:
        d = json.loads(d)
        if d.get("name") == "sift1m" and d.get("prefix") != "sift":
            out.append(f"Our data are `{Path(str(d.get('root'))).name}/{d.get('prefix')}_*`, not SIFT1M's `sift_*` "
                       "files: compare orderings and shapes, not levels.")
        if d.get("max_base"):
            out.append(f"Our base holds the first {d['max_base']:,} vectors (the paper: 1,000,000), so the true "
                       "neighbour has fewer rivals and recall@T is higher at the same T.")
        if d.get("name") == "image_folder":
            out.append("Our images are a JPEG copy of CIFAR-10 (q75), not the original binaries.")
        if d.get("max_train"):
            out.append(f"Trained on {d['max_train']:,} images/vectors (seeded subset).")
        if d.get("genuine_test"):
            out.append(f"ours_mean is scored on the test images of `{Path(str(d['genuine_test'])).name}` "
                       "(dataset.genuine_test: their original, lossless pixels); ours_jpeg_test_mean on the run's "
                       "own test split.")
    return sorted(set(out))


def code_versions(runs: list[dict[str, Any]]) -> list[str]:
    """Which code versions the runs came from (common/provenance.py), and a warning when runs of
    two results versions (code changes that alter numbers) are on one page."""
    from ..common.provenance import describe

    counts: dict[str, int] = defaultdict(int)
    versions = set()
    for run in runs:
        code = run.get("code")
        counts[describe(code)] += 1
        versions.add(code.get("results_version") if isinstance(code, dict) else None)
    if not counts:
        return []
    out = ["Code versions of these runs: " + "; ".join(f"{v}: {n} run{'s' * (n != 1)}" for v, n in sorted(counts.items()))
           + "."]
    if len(versions) > 1:
        out.append(f"**Warning: these runs come from {len(versions)} results versions** "
                   f"({', '.join(str(v) for v in sorted(versions, key=str))}; 'None': recorded before vqbench recorded "
                   "its version): code changes between them alter numbers, so points may not be comparable.")
    return out



def _ranking(scored: list[tuple[str, float]]) -> list[frozenset[str]]:
    """Methods best first (lowest score), equal scores (to 1e-9) grouped as ties."""
    groups: list[tuple[float, set[str]]] = []
    for method, score in sorted(scored, key=lambda m: m[1]):
        if groups and abs(score - groups[-1][0]) <= 1e-9 * max(1.0, abs(score)):
            groups[-1][1].add(method)
        else:
            groups.append((score, {method}))
    return [frozenset(g) for _, g in groups]


def _ranking_text(groups: list[frozenset[str]]) -> str:
    return " > ".join(" = ".join(sorted(g)) for g in groups)


def _resolved_pairs(rows: list[Row], sign: float) -> list[tuple[str, str]]:
    """(better, worse) pairs whose 5-95 % bands over our seeds do not overlap: the differences
    our seeds resolve. A single-seed point resolves nothing."""
    # each band as (best, worst) in score units (lower is better after `sign`)
    bands = {r.method: sorted((sign * r.stat()[1], sign * r.stat()[2])) for r in rows if r.n >= 2}
    return sorted((a, b) for a in bands for b in bands if a != b and bands[a][1] < bands[b][0])


def orderings(data: FigureData) -> list[str]:
    """Per x: the published order of the methods beside ours (best first), whether they agree,
    and which of our differences the seeds resolve (bands apart) and whether the paper has them
    the same way round."""
    better = max if data.panel.higher_is_better else min
    by_x: dict[float, list[Row]] = defaultdict(list)
    for row in data.rows:
        if row.paper is not None and row.n:
            by_x[row.x].append(row)
    out, disagree, contradicted = [], 0, 0
    for x in sorted(by_x):
        rows = by_x[x]
        if len(rows) < 2:
            continue
        sign = -1.0 if better is max else 1.0
        paper_order = _ranking([(r.method, sign * r.paper[0]) for r in rows])
        ours_order = _ranking([(r.method, sign * r.stat()[0]) for r in rows])
        same = paper_order == ours_order
        disagree += not same
        paper_score = {r.method: sign * r.paper[0] for r in rows}
        resolved = _resolved_pairs(rows, sign)
        against = [(a, b) for a, b in resolved if not paper_score[a] < paper_score[b]]
        contradicted += bool(against)
        shown = ", ".join(f"{a} > {b}" for a, b in resolved) or "none"
        verdict = ", ".join(f"**{a} > {b}**" for a, b in against) or "none"
        out.append(f"| {int(x)} | {_ranking_text(paper_order)} | {_ranking_text(ours_order)} | "
                   f"{'yes' if same else '**no**'} | {shown} | {verdict} |")
    if not out:
        return []
    head = [f"## Orderings (best first): {len(out) - disagree} of {len(out)} agree with the paper; "
            f"at {len(out) - contradicted} of {len(out)} every difference our seeds resolve has the paper's sign", "",
            "Resolved: the pairs whose 5–95 % bands over our seeds do not overlap (better > worse); a "
            "difference inside the bands is not an ordering our runs can claim.", "",
            "| x | paper | ours (means) | same | ours, resolved by the seeds | resolved against the paper |",
            "|---|---|---|---|---|---|"]
    return head + out
