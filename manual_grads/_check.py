"""Input validation shared by every manual gradient.

A hand-written backward trusts the shapes it is given. Broadcasting turns a wrong shape
into a wrong gradient without a word (``(N, 1) - (N,)`` is ``(N, N)``), so every public
function checks its inputs first and names the argument that is wrong.
"""

from collections.abc import Mapping

import torch


def check(shapes: Mapping[str, str], **tensors: torch.Tensor) -> dict[str, int]:
    """Check tensors against symbolic shapes and return the size bound to each symbol.

    ``shapes`` maps an argument name to its shape, written as space-separated symbols
    (``"N D"``) or fixed sizes (``"D 1"``); ``""`` is a scalar. A symbol takes its size
    from the first argument that has it, and every later argument must agree. All tensors
    must be floating point, of one dtype and on one device.
    """
    sizes: dict[str, tuple[int, str]] = {}
    first: tuple[str, torch.Tensor] | None = None
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name}: dtype {t.dtype} is not floating point; a gradient "
                             "needs a floating-point tensor (float32 or float64)")
        if first is None:
            first = (name, t)
        elif t.dtype != first[1].dtype:
            raise ValueError(f"{name}: dtype {t.dtype} differs from {first[0]}'s "
                             f"{first[1].dtype}; all inputs need one dtype")
        elif t.device != first[1].device:
            raise ValueError(f"{name}: on device {t.device}, but {first[0]} is on "
                             f"{first[1].device}; all inputs need one device")
        symbols = shapes[name].split()
        want = "(" + ", ".join(symbols) + ("," if len(symbols) == 1 else "") + ")"
        got = tuple(t.shape)
        if len(symbols) != t.dim():
            raise ValueError(f"{name}: expected shape {want}, got {got}")
        for symbol, size in zip(symbols, got, strict=True):
            if symbol.isdigit():
                if size != int(symbol):
                    raise ValueError(f"{name}: expected shape {want}, got {got}")
            elif symbol in sizes:
                bound, source = sizes[symbol]
                if size != bound:
                    raise ValueError(f"{name}: expected shape {want} with {symbol}={bound} "
                                     f"as in {source}, got {got}")
            elif size == 0:
                raise ValueError(f"{name}: expected shape {want} with {symbol} >= 1, "
                                 f"got {got} (empty)")
            else:
                sizes[symbol] = (size, name)
    return {symbol: size for symbol, (size, _) in sizes.items()}
