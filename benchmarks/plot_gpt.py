"""Time and peak memory of the GPT training step at width 256 against the context T, for
eager autograd, compiled autograd and the hand training form, eager and compiled; linear
axes.

    pip install -e ".[plot]"
    python -m benchmarks.plot_gpt --runs .benchmarks/gpt-1.json ... \\
        --memory .benchmarks/memory-1.json ...

reads the ratio files that ``pytest benchmarks -k gpt --ratios-json PATH`` writes (each
point on the left: the median over the runs of the benchmark's minimum time) and the
figures that ``python -m benchmarks.memory --suite gpt_context --json PATH`` writes (on the
right: the median over the runs of the peak), and saves ``benchmarks/gpt_context.png``.
"""

import argparse
import json
import re
import statistics
from pathlib import Path

from matplotlib.figure import Figure

from benchmarks.plot import series
from benchmarks.summary import load_runs

GROUP = re.compile(r"^gpt_training_step-(?P<device>\w+)-T(?P<n>\d+)$")
FORMS = {"autograd": "eager autograd", "compiled": "compiled autograd (torch.compile)",
         "train": "by hand, the training form",
         "train_compiled": "by hand, the training form compiled (torch.compile)",
         "manual": "by hand, the teaching form"}


def memory_series(figures: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """``{form: [(T, bytes), ...]}``: each peak's median over the runs."""
    got: dict[str, dict[int, list[float]]] = {}
    for run in figures:
        for form, by_t in run["bytes"].items():
            for t, peak in by_t.items():
                got.setdefault(form, {}).setdefault(int(t), []).append(peak)
    return {form: [(t, statistics.median(vs)) for t, vs in sorted(by_t.items())]
            for form, by_t in got.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot_gpt",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--runs", nargs="+", type=Path, required=True,
                        help="ratio JSON files of pytest benchmarks, one per run")
    parser.add_argument("--memory", nargs="+", type=Path, required=True,
                        help="JSON files of python -m benchmarks.memory --suite gpt_context")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).with_name("gpt_context.png"))
    args = parser.parse_args(argv)
    runs = load_runs(parser, args.runs)
    figures = [json.loads(p.read_text()) for p in args.memory]
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    times, peaks = fig.subplots(1, 2)
    for ax, lines, scale in ((times, series(runs, args.device, groups=GROUP), 1e3),
                             (peaks, memory_series(figures), 2**-20)):
        for form, points in lines.items():
            if form in FORMS and len(points) > 1:
                ts, values = zip(*points, strict=True)
                ax.plot(ts, [v * scale for v in values], marker="o", label=FORMS[form])
        ax.set(xlabel="context T (width 256, 8 heads, 2 blocks, 4 sequences)", xlim=(0, None),
               ylim=(0, None))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left")
    times.set(ylabel="ms per training step (minimum)")
    peaks.set(ylabel="MiB at peak over one step")
    m = runs[0]["machine"]
    where = m["gpu"] if args.device == "cuda" else m["cpu"]
    fig.suptitle(f"GPT training step on {args.device}: {where}, torch {m['torch']},"
                 f" {m['torch_threads']} thread(s), float32; median of {len(runs)} runs"
                 f" (time) and {len(figures)} (memory)", fontsize=10)
    fig.savefig(args.output, dpi=110)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
