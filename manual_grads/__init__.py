"""Hand-derived gradients: plain tensor algebra, no autograd.

One module per worked example, named like its case in ``cases/``. Each module has

- ``SHAPES``: the symbolic shape of every input, e.g. ``{"x": "N D", "w1": "D H"}``;
- ``forward(...)``: the forward pass, returning every named value the backward needs;
- ``gradients(...)``: the backward pass, written bottom-up against ``forward``. It returns
  the gradient of the output with respect to every named value it passes through, in the
  order the chain rule reaches them (``d_diff``, ``d_out``, ... ``d_w1``), keyed by the
  value's name: the inputs' gradients and each intermediate step, all checked.

Nothing in this package may use autograd: no backward calls, nothing from torch's autograd
or func modules, no requires-grad flags, no grad attributes. A test scans for it.
"""
