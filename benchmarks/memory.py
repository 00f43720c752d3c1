"""Peak memory of one forward and backward, per form and size: the MLP's, attention's, or
a GPT training step's.

    python -m benchmarks.memory                     # CPU: the MLP's table in the README
    python -m benchmarks.memory --suite attention   # attention at T = 256 and 1024
    python -m benchmarks.memory --suite gpt         # a GPT training step at C = 32
    python -m benchmarks.memory --suite gpt_context --json .benchmarks/memory-1.json
                                                    # at C = 256, T = 256, 512 and 1024
    python -m benchmarks.memory --device cuda       # on a GPU

A suite is a module of forms (``SUITES``): ``mlp_forms``, ``attention_forms``,
``gpt_forms`` or ``gpt_context_forms``, each with
its ``FORMS``, ``SIZES``, ``draw(device, size)`` and the forms it has figures for. Each
figure comes from a fresh process, which draws the inputs, then measures how much
memory the form adds at its peak over one call, its set-up included (``buffered``
allocates its buffers there): on the CPU the peak resident set size (``VmHWM``, its
high-water mark first reset to the current size through Linux's ``/proc/self/clear_refs``,
so that drawing the inputs in float64 does not hide it); on CUDA
``torch.cuda.max_memory_allocated``. The compiled forms' set-up, compiling, is left out:
its figure is one call's, after the two that compile it (the compiler's own memory is no
step's). ``--json`` also writes the figures, in bytes, for ``benchmarks.plot_gpt``. The
MLP's GEMM floor has no figure: it is handed operands that a real backward would have had
to compute.
"""

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import torch

SUITES = {"mlp": "benchmarks.mlp_forms", "attention": "benchmarks.attention_forms",
          "gpt": "benchmarks.gpt_forms", "gpt_context": "benchmarks.gpt_context_forms"}
SET_UP_APART = ("compiled", "train_compiled")  # forms whose set-up is not counted
ROOT = Path(__file__).resolve().parents[1]


def suite(name: str) -> ModuleType:
    return importlib.import_module(SUITES[name])


def peak_rss() -> int:
    """The process's peak resident set size in bytes: ``VmHWM``. Not ``ru_maxrss``, which
    also keeps the peak of the image the process had before ``exec``, a fork of its parent:
    started from a large parent (pytest), it stays at the parent's size after a reset."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024  # kB


def peak_cpu(run) -> int:
    """Bytes of resident memory that ``run()`` adds at its peak (Linux only)."""
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = peak_rss()
    run()
    return peak_rss() - before


def peak_cuda(run) -> int:
    """Bytes of CUDA memory that ``run()`` allocates at its peak, beyond what was held."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def child(suite_name: str, form: str, n: int, device: str) -> int:
    torch.set_num_threads(1)
    forms = suite(suite_name)
    inputs = forms.draw(device, n)
    measure = peak_cuda if device == "cuda" else peak_cpu
    if form in SET_UP_APART:
        return measure(forms.FORMS[form](inputs))
    return measure(lambda: forms.FORMS[form](inputs)())


def measured(form: str, n: int, device: str, suite_name: str = "mlp") -> int:
    """``child`` in a fresh Python process: nothing freed earlier can be reused."""
    args = [sys.executable, "-m", "benchmarks.memory", "--child", suite_name, form, str(n),
            device]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def table(sizes, forms, device, suite_name: str = "mlp", figures: dict | None = None
          ) -> list[str]:
    """The markdown table; ``figures``, where given, gets ``{form: {size: bytes}}``."""
    mib, module = 2**20, suite(suite_name)
    figures = {} if figures is None else figures
    label = module.scale(sizes[0])[0]
    lines = ["| MiB at peak | " + " | ".join(f"{module.SIZE}={n}" for n in sizes) + " |",
             "| --- |" + " ---: |" * len(sizes),
             f"| *{label}* | "
             + " | ".join(f"*{module.scale(n)[1] / mib:.1f}*" for n in sizes) + " |"]
    for form in forms:
        got = figures.setdefault(form, {})
        for n in sizes:
            if not module.too_big(form, n):
                got[n] = measured(form, n, device, suite_name)
        cells = [f"{got[n] / mib:.1f}" if n in got else "skipped" for n in sizes]
        lines.append(f"| {form} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--suite", default="mlp", choices=SUITES)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--sizes", type=int, nargs="+", help="default: the suite's SIZES")
    parser.add_argument("--forms", nargs="+", help="default: every form the suite measures")
    parser.add_argument("--json", type=Path, help="also write the figures (bytes) here")
    parser.add_argument("--child", nargs=4, metavar=("SUITE", "FORM", "SIZE", "DEVICE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (torch.cuda.is_available() is False)")
    if args.child:
        suite_name, form, n, device = args.child
        print(child(suite_name, form, int(n), device))
        return
    module = suite(args.suite)
    forms = args.forms or module.MEASURED
    if unknown := sorted(set(forms) - set(module.MEASURED)):
        parser.error(f"--forms: {unknown} not among {args.suite}'s {list(module.MEASURED)}")
    figures: dict = {}
    print("\n".join(table(args.sizes or module.SIZES, forms, args.device, args.suite, figures)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"suite": args.suite, "device": args.device,
                                         "size": module.SIZE, "bytes": figures}, indent=2))


if __name__ == "__main__":
    main()
