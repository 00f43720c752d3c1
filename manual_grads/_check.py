"""``check``, the shape/dtype/device refusal every manual gradient runs first: handgrad's
public ``handgrad.check`` (``handgrad/shapes.py``), named here for the algebra's imports.

``handgrad.shapes`` imports only torch, so ``manual_grads`` still depends on nothing but
torch and that one leaf; ``handgrad`` itself never imports ``manual_grads``: the arrows
keep pointing one way.
"""

from handgrad.shapes import check

__all__ = ["check"]
