"""Hand-derived gradients: plain tensor algebra, no autograd.

One module per worked example, named like its case in ``cases/``. Each module has

- ``SHAPES``: the symbolic shape of every input, e.g. ``{"x": "N D", "w1": "D H"}``;
- ``forward(...)``: the forward pass, returning every named value the backward needs;
- ``gradients(...)``: the backward pass, written bottom-up against ``forward``.

Nothing in this package may use autograd (``backward``, ``torch.autograd``,
``torch.func``, ``requires_grad``, ``.grad``); a test scans for it.
"""
