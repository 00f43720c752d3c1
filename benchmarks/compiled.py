"""The baseline a user who wants speed would pick: ``torch.compile`` of the autograd
reference, warmed up (compiled) before it is timed.

- A case (``compiled_reference``): the case's forward, compiled, returning only its
  output (a model's forward drops its other values too), then ``torch.autograd.grad``
  through it; AOTAutograd compiles the backward with the forward.
- A training step (``compiled_step``): the whole step, forward, ``loss.backward()`` and
  ``torch.optim.AdamW``'s step, in one compiled function, on parameters and an optimiser
  kept between calls and put back before each (the step from the same parameters, the
  moments at 0, every call).
- A hand step (``compiled_call``): a function of tensors with no autograd in it, the hand
  training step, compiled as it is: inductor fuses its elementwise passes, as it fuses
  autograd's, so that the two compare compiled against compiled.

Where torch cannot compile, the compiled form raises ``CannotCompile`` with torch's own
reason: the form's benchmark is skipped with it, and the other forms are timed without it.

``BACKEND`` is inductor's, which on the CPU writes C++ and compiles it (a C++ compiler is
needed). Under ``--benchmark-disable`` (each benchmark once, as a test: what CI runs)
conftest sets it to ``aot_eager``: dynamo and AOTAutograd trace and split forward and
backward as for inductor, and the verdict judges what they return, without the minutes of
code generation that inductor takes for every group (``benchmarks/README.md``).
"""

import warnings
from collections.abc import Callable
from contextlib import contextmanager

import torch

BACKEND = "inductor"
Tensors = dict[str, torch.Tensor]


class CannotCompile(Exception):
    """torch.compile failed on this form; the message is torch's."""


@contextmanager
def _torch_warnings_let_pass():
    """Warnings torch raises about its own code while it compiles, which pytest would turn
    into errors: inductor's first use imports ``torch.jit`` code that warns of its own
    deprecation, and dynamo, tracing the optimiser, reads ``.grad`` of its own non-leaf
    stand-ins (torch 2.13). Those two alone are let pass."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.script_method` is deprecated",
                                DeprecationWarning)
        warnings.filterwarnings("ignore", "The .grad attribute of a Tensor that is not a leaf",
                                UserWarning)
        yield


def _compile(fn):
    with _torch_warnings_let_pass():
        return torch.compile(fn, backend=BACKEND, dynamic=False)


def warmed(call: Callable[[], Tensors], what: str) -> Callable[[], Tensors]:
    """``call`` after two calls, which compile it (the second again where the first made
    state its guards see: the optimiser's moments); ``CannotCompile`` with torch's reason
    if that fails for a reason of torch's compiler (dynamo, AOTAutograd, inductor)."""
    try:
        with _torch_warnings_let_pass():
            call()
            call()
    except Exception as error:
        if not type(error).__module__.startswith("torch"):
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CannotCompile(f"torch.compile ({BACKEND}) cannot compile {what}: "
                            f"{type(error).__name__}: {first}") from error
    return call


def compiled_reference(case, inputs: Tensors) -> Callable[[], Tensors]:
    """``case.reference(inputs)`` with the forward compiled; compiled here, once."""
    output, grad_output, wrt = case.output, case.grad_output, case.wrt
    forward = _compile(lambda **kw: case.module.forward(**kw)[output])

    def call() -> Tensors:
        leaves = {k: t.detach().requires_grad_(k in wrt) for k, t in inputs.items()}
        out = forward(**{k: t for k, t in leaves.items() if k != grad_output})
        v = leaves[grad_output] if grad_output else None
        grads = torch.autograd.grad(out, [leaves[k] for k in wrt], grad_outputs=v)
        return dict(zip(wrt, grads, strict=True))
    return warmed(call, case.name)


def compiled_call(call: Callable[[], Tensors], what: str) -> Callable[[], Tensors]:
    """``call`` compiled whole, and compiled (called twice) here."""
    return warmed(_compile(call), what)


def compiled_step(loss_of: Callable[[Tensors], torch.Tensor], params: Tensors, hyper: dict,
                  what: str) -> Callable[[], Tensors]:
    """One training step, compiled whole: ``loss_of(leaves)``, its backward, AdamW's step.
    Returns the loss and every parameter after the step, as ``gpt_forms.autograd``."""
    start = {k: p.detach().clone() for k, p in params.items()}
    leaves = {k: p.detach().clone().requires_grad_() for k, p in params.items()}
    optimiser = torch.optim.AdamW(leaves.values(), **hyper)

    @_compile
    def step() -> torch.Tensor:
        optimiser.zero_grad(set_to_none=True)
        loss = loss_of(leaves)
        loss.backward()
        optimiser.step()
        return loss.detach()

    def call() -> Tensors:
        with torch.no_grad():  # the same step every call: from the start, moments at 0
            for k, p in leaves.items():
                p.copy_(start[k])
            for state in optimiser.state.values():
                for value in state.values():
                    value.zero_()
        loss = step()
        return {"loss": loss, **{k: p.detach().clone() for k, p in leaves.items()}}
    return warmed(call, what)
