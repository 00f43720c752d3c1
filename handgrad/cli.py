"""The command line over a registry: verify the cases here and now, walk through one, or
regenerate a README's tables. ``python -m cases`` is this over handgrad's own cases."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from handgrad import readme
from handgrad.case import DTYPES, Case
from handgrad.report import devices, limits_table, summary, table, verify
from handgrad.walkthrough import walkthrough


class CliError(Exception):
    """A one-line error for the user: printed with the program's name, exit status 2."""


def parser(prog: str, names: Sequence[str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Check each hand-derived gradient against autograd by handgrad's verdict "
                    "(every draw, device and dtype here), against finite differences and "
                    "forward mode (float64); print one row per check and the detection "
                    "limits (the smallest uniform relative error the verdict rejects); exit 1 "
                    "if any check fails. Or replay a case step by step, or regenerate a "
                    "README's tables.",
        epilog=f"cases: {', '.join(names)}")
    p.add_argument("names", nargs="*", metavar="NAME", help="cases to run (default: all)")
    p.add_argument("--device", action="append", choices=["cpu", "cuda"],
                   help="a device to run on; may be repeated (default: every one here)")
    p.add_argument("--dtype", action="append", choices=list(DTYPES),
                   help="a dtype to run in; may be repeated (default: all four)")
    p.add_argument("--failures-only", action="store_true",
                   help="print only the checks that fail, and the count")
    p.add_argument("--walkthrough", action="store_true",
                   help="replay each case's example step by step instead of verifying")
    p.add_argument("--update-readme", type=Path, metavar="README",
                   help="rewrite the generated tables inside README (every case, the CPU, "
                        "all dtypes: refuses a case, device or dtype filter)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def run(args: argparse.Namespace, cases: Sequence[Case]) -> int:
    by_name = {c.name: c for c in cases}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        raise CliError(f"unknown case {unknown[0]!r} (choose from {', '.join(by_name)})")
    chosen = [by_name[n] for n in args.names] or list(cases)
    if args.update_readme:
        if args.names or args.device or args.dtype:
            raise CliError("--update-readme regenerates every table from every case: drop "
                           "the case, --device and --dtype filters")
        if not args.update_readme.is_file():
            raise CliError(f"--update-readme: no file {args.update_readme}")
        text = args.update_readme.read_text()
        try:
            readme.blocks(text)
        except ValueError as error:
            raise CliError(f"--update-readme: {error}") from None
        report = verify(cases, ["cpu"], progress=not args.no_progress)
        if not report.passed:
            raise CliError(f"{len(report.failures)} checks fail; a README is written only "
                           f"from cases that pass (run without --update-readme to see them)")
        args.update_readme.write_text(readme.update(text, readme.generate(cases, report)))
        print(f"updated the generated tables in {args.update_readme}")
        return 0
    if args.walkthrough:
        print("\n\n".join("\n".join(walkthrough(c)) for c in chosen))
        return 0
    wanted = args.device or devices()
    if set(wanted) - set(devices()):
        raise CliError(f"--device cuda: no CUDA device here (torch.cuda.is_available() is "
                       f"False); have {devices()}")
    report = verify(chosen, wanted, args.dtype, progress=not args.no_progress)
    rows = report.failures if args.failures_only else report.rows
    if rows:
        print(table(rows))
        print()
    if report.limits and not args.failures_only:
        print(limits_table(report.limits))
        print()
    print(summary(report))
    return 0 if report.passed else 1


def main(cases: Sequence[Case], argv: Sequence[str] | None = None,
         prog: str = "python -m handgrad.cli") -> int:
    args = parser(prog, [c.name for c in cases]).parse_args(argv)
    try:
        return run(args, cases)
    except CliError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
