"""Where a GPT training step's time goes: ``torch.profiler``'s operators by self CPU time,
for each form of ``gpt_context_forms`` at one context, one torch thread; or any suite of
``benchmarks.memory.SUITES`` at one size.

    python -m benchmarks.profile_gpt                       # T = 256, autograd and train
    python -m benchmarks.profile_gpt --forms compiled --t 1024 --rows 15
    python -m benchmarks.profile_gpt --suite mlp --forms buffered floor --t 1000   # N

Each form is made (and, compiled, compiled) first, called once more, then profiled over
``--steps`` calls; the table gives each operator's share of the form's time.
"""

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.memory import SUITES, suite


def top(form: str, t: int, steps: int, rows: int, suite_name: str = "gpt_context") -> list[str]:
    forms = suite(suite_name)
    call = forms.FORMS[form](forms.draw("cpu", t))
    call()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            call()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    lines = [f"{form} at {forms.SIZE}={t}: {total / steps / 1e3:.1f} ms of operators a step",
             f"{'operator':44} {'ms a step':>10} {'share':>7} {'calls':>6}"]
    for e in events[:rows]:
        lines.append(f"{e.key[:44]:44} {e.self_cpu_time_total / steps / 1e3:10.2f}"
                     f" {e.self_cpu_time_total / total:7.1%} {e.count // steps:6}")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_gpt",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--suite", default="gpt_context", choices=list(SUITES))
    parser.add_argument("--forms", nargs="+", default=["autograd", "train"],
                        help="forms of the suite (the GPT step's: autograd, compiled, train, "
                             "train_compiled)")
    parser.add_argument("--t", type=int, default=256,
                        help="the context, or the suite's size (the MLP's N)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for form in args.forms:
        print("\n".join(top(form, args.t, args.steps, args.rows, args.suite)), end="\n\n")


if __name__ == "__main__":
    main()
