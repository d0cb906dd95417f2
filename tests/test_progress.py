import io

from vqbench.common.progress import progress


def test_postfix_does_not_force_a_refresh_per_call():
    """In a log (not a terminal) a bar refreshes at most every 30 s; set_postfix must not add a
    line per call, each showing a stale 0/N counter."""
    out = io.StringIO()
    bar = progress(range(200), desc="t", file=out)
    for i in bar:
        bar.set_postfix(mse=f"{i}", refresh=False)
    bar.close()
    assert out.getvalue().count("mse=") <= 1, out.getvalue()[:300]
