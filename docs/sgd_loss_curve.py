"""``python docs/sgd_loss_curve.py``: the SGD loss curve (needs the ``plot`` extra).

The article's 10-epoch run of ``nn.Linear(1, 1)`` + ``nn.MSELoss`` + ``torch.optim.SGD``
over shuffled batches of 3, with the hand-derived gradients and update drawn over torch's
own. Each point is the loss of the batch that step trained on (not an epoch's mean): the
two curves coincide step for step, and the title gives their largest gap.
"""

import argparse
from pathlib import Path

from cases.sgd_linear_regression import E2_STEP, e2_run, side_by_side


def sgd_loss_curve(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches, w0, b0 = e2_run()
    steps = list(side_by_side(batches, w0, b0, E2_STEP["lr"]))
    fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    sides = {"torch": ("torch: autograd + optim.SGD", dict(lw=4, alpha=0.35, color="C0")),
             "hand": ("hand: manual gradients + sgd_step", dict(lw=1.2, ls="--", marker=".",
                                                                color="C3"))}
    for side, (label, style) in sides.items():
        ax.plot(range(1, len(steps) + 1), [s[side]["loss"].item() for s in steps], label=label,
                **style)
    gap = max(abs(s["hand"]["loss"].item() - s["torch"]["loss"].item()) for s in steps)
    ax.set(yscale="log", xlabel="step (batches of 3; 4 steps an epoch)",
           ylabel="MSE loss of the step's batch",
           title=f"sgd_linear_regression, 10 epochs, hand vs torch: largest gap {gap:.1e}")
    ax.legend()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python docs/sgd_loss_curve.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".png"))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sgd_loss_curve(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
