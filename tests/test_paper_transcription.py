"""The transcribed published numbers equal the authors' released figure data, value for value.

`vqbench.paper.published_toy` / `published_apps` hold the numbers behind the paper's figures,
transcribed from the JSON files the authors released beside the paper. Those files sit in
`../shared/paper/` next to a checkout (they are not committed); where they are, every number the
project compares against is checked here to the last bit, so a slip in a transcription (or a
changed digit) fails a test instead of moving a tolerance.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vqbench.paper import FIGURES, figure

SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "paper"

# figure -> (released file, its x column, {our method: the file's series name})
PROPOSED = {"avq": "AVQ", "rvq": "RVQ", "pvq": "PVQ"}
RELEASED = {
    "fig2a": ("fig2_correlated_dataset_Fig2-a.json", "VQ Bitrate", PROPOSED),
    "fig2b": ("fig2_uncorrelated_dataset_Fig2-b.json", "VQ Bitrate", PROPOSED),
    "fig3_64": ("fig3_Data_Dimension_64.json", "VQ Bitrate", PROPOSED),
    "fig3_128": ("fig3_Data_Dimension_128.json", "VQ Bitrate", PROPOSED),
    "fig3_256": ("fig3_Data_Dimension_256.json", "VQ Bitrate", PROPOSED),
    "fig4a": ("fig4_SSIM_Fig4-a.json", "VQ Bitrate", PROPOSED),
    "fig4b": ("fig4_PeakSNR_Fig4-b.json", "VQ Bitrate", PROPOSED),
    "fig4c": ("fig4_Complexity_Fig4-c.json", "VQ Bitrate", PROPOSED),
    "fig5": ("fig5_Recall.json", "T", {"avq": "AVQ proposed", "rvq": "RVQ proposed", "pvq": "PVQ proposed",
                                       "avq_baseline": "AVQ baseline", "pvq_baseline": "PVQ baseline"}),
    "fig6a": ("fig6_Recall_RVQ_Fig6-a.json", "T", {"rvq": "RVQ proposed", "rvq_baseline": "RVQ baseline"}),
    "fig6b": ("fig6_Complexity_Fig6-b.json", "VQ Bitrate", PROPOSED),
}

needs_source = pytest.mark.skipif(not SOURCE.is_dir(), reason=f"the authors' figure data is not at {SOURCE}")


def _released(name: str) -> tuple[dict, str, dict[str, str]]:
    file, x_key, methods = RELEASED[name]
    return json.loads((SOURCE / file).read_text()), x_key, methods


def _x(values: list) -> tuple[int, ...]:
    """'12 bits' -> 12, '64' -> 64."""
    return tuple(int(re.fullmatch(r"\s*(\d+)(\s*bits)?\s*", str(v)).group(1)) for v in values)


def test_every_figure_has_a_released_file():
    assert set(RELEASED) == set(FIGURES)


@needs_source
@pytest.mark.parametrize("name", sorted(RELEASED))
def test_transcription_equals_the_released_numbers(name):
    data, x_key, methods = _released(name)
    fig = figure(name)
    assert fig.x == _x(data[x_key]), name
    assert set(fig.series) == set(methods), name
    for method, label in methods.items():
        s = fig.series[method]
        if f"Mean ({label})" in data:  # a curve with its quantile band
            assert s.mean == tuple(data[f"Mean ({label})"]), (name, method, "mean")
            assert s.low == tuple(data[f"Quantile Low ({label})"]), (name, method, "low")
            assert s.high == tuple(data[f"Quantile High ({label})"]), (name, method, "high")
        else:  # one value per x, no band (complexity, baselines)
            assert s.mean == tuple(data[label]), (name, method, "mean")
            assert s.low is None and s.high is None, (name, method)


@needs_source
def test_every_released_series_is_transcribed():
    """No series of a released file is left out (a dropped curve would go unnoticed otherwise)."""
    for name in RELEASED:
        data, x_key, methods = _released(name)
        labels = set(methods.values())
        for key, value in data.items():
            if isinstance(value, list) and key != x_key:
                label = re.fullmatch(r"(?:Mean|Quantile Low|Quantile High) \((.+)\)", key)
                assert (label.group(1) if label else key) in labels, (name, key)
