"""How a half-precision kernel reads its inputs: into float32 (float64 stays float64)."""

import torch


def wide(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor in float32, or in its own dtype where that is wider."""
    return [t.to(torch.promote_types(t.dtype, torch.float32)) for t in tensors]
