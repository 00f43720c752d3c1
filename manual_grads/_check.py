"""``check``, the shape/dtype/device refusal every manual gradient runs first: handgrad's
public ``handgrad.check``, defined in ``handgrad/shapes.py``.

``handgrad.shapes`` imports only torch (``tests/test_contracts.py`` holds it to that) and is
the one module of handgrad the algebra imports; the engine imports nothing of
``manual_grads``, so the arrows still point one way.
"""

from handgrad.shapes import check

__all__ = ["check"]
