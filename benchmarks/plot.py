"""Time against batch size for each form of the MLP's backward, log-log, with the floor;
and beside it each form's time over the floor's, from the paired timing.

    pip install -e ".[plot]"
    python -m benchmarks.plot .benchmarks/ratios-1.json .benchmarks/ratios-2.json ...

reads the ratio files that ``pytest benchmarks --ratios-json PATH`` writes and saves
``benchmarks/scaling.png``: each point is the median over the runs of the benchmark's
minimum time (left) or of its paired ratio to the floor (right, as in the README's table).
"""

import argparse
import re
import statistics
from pathlib import Path

from matplotlib.figure import Figure

from benchmarks.summary import load_runs

GROUP = re.compile(r"^mlp_relu_mse-(?P<device>\w+)-N(?P<n>\d+)$")
STYLE = {"floor": {"color": "black", "linestyle": "--", "marker": "s"}}


def series(runs: list[dict], device: str, key: str = "min_s", groups: re.Pattern = GROUP
           ) -> dict[str, list[tuple]]:
    """``{variant: [(N, value), ...]}``: ``key``'s median over the runs, in order of N, over
    the groups that ``groups`` matches (its ``device`` and ``n``)."""
    times: dict[str, dict[int, list[float]]] = {}
    for run in runs:
        for group, variants in run["groups"].items():
            match = groups.match(group)
            if match and match["device"] == device:
                for variant, v in variants.items():
                    if v[key] is None:
                        continue
                    times.setdefault(variant, {}).setdefault(int(match["n"]), []).append(
                        v[key])
    return {variant: [(n, statistics.median(ts)) for n, ts in sorted(by_n.items())]
            for variant, by_n in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("runs", nargs="+", type=Path, help="ratio JSON files, one per run")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("-o", "--output", type=Path,
                        default=Path(__file__).with_name("scaling.png"))
    args = parser.parse_args(argv)
    runs = load_runs(parser, args.runs)
    m = runs[0]["machine"]
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    times, ratios = fig.subplots(1, 2)
    for variant, points in series(runs, args.device, "min_s").items():
        ns, values = zip(*points, strict=True)
        times.plot(ns, values, label=variant, **STYLE.get(variant, {"marker": "o"}))
    times.set(xscale="log", yscale="log", xlabel="batch size N (D = 784, H = 50)",
              ylabel="seconds per forward + backward (minimum)")
    # The broadcast form is 16 to 64 times the floor: on the same linear axis it would
    # flatten the others' gaps (12 to 124 %), so its ratios are written, not drawn.
    apart = "broadcast"
    for variant, points in series(runs, args.device, "over_floor").items():
        ns, values = zip(*points, strict=True)
        if variant == apart:
            note = ", ".join(f"N={n}: {v:.0f}x" for n, v in points)
            ratios.annotate(f"{apart} (not drawn): {note}", (0.02, 0.96),
                            xycoords="axes fraction", va="top", fontsize=8)
            continue
        ratios.plot(ns, values, label=variant, **STYLE.get(variant, {"marker": "o"}))
    ratios.set(xscale="log", xlabel="batch size N", ylim=(0.9, None),
               ylabel="time / the floor's (paired timing; 1 = the six matmuls alone)")
    for ax in (times, ratios):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right" if ax is times else "center right")
    where = m["gpu"] if args.device == "cuda" else m["cpu"]
    fig.suptitle(f"mlp_relu_mse on {args.device}: {where}, torch {m['torch']},"
                 f" {m['torch_threads']} thread(s), float32; median of {len(runs)} runs",
                 fontsize=10)
    fig.savefig(args.output, dpi=110)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
