"""A tiny GPT-2 on hand gradients alone: embeddings, two blocks, a final layer norm, the
tied head and the cross-entropy (the issue's item 8).

The loss is a scalar; ``idx`` and ``target`` are integer inputs, not differentiated. The
weight matrices are drawn at an initialisation's scale, and the generated shapes hold the
context and the depth, as ``gpt_block``'s draws do (its module says why).
"""

import multiprocessing
import multiprocessing.connection
import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import torch

from cases.causal_self_attention import H_MOST, T_MOST
from cases.gpt_block import FAN_IN, L_MOST, GptCase
from manual_grads import tiny_gpt

Tensors = dict[str, torch.Tensor]

CASE = GptCase(
    name="tiny_gpt",
    source="beyond the articles: a GPT-2 of two blocks, tied head, cross-entropy loss",
    formula="loss = cross_entropy(ln_f(block(block(wte[idx] + wpe))) wte^T, target)",
    closed_form="each op's own backward, bottom-up; d_wte = scatter-add(d_h0) + d_logits^T lnf",
    module=tiny_gpt,
    output="loss",
    wrt=tiny_gpt.PARAMETERS,
    # L, C, H and D first: the small sizes for finite differences (2, 3, 4, ...) go in this
    # order, and these keep the weights, L C H D entries, and gradcheck's Jacobian small.
    dims={"L": 2, "C": 32, "H": 4, "D": 8, "F": 128, "T": 16, "V": 64, "B": 4},
    large={"L": 2, "C": 8, "H": 2, "D": 4, "F": 16, "T": 8, "V": 32, "B": 512},
    variants=("gradients_train",),  # the parameters' only, lean (manual_grads)
    fan_in=FAN_IN,
    most={"T": T_MOST, "H": H_MOST, "L": L_MOST},
)

# Training: the hand side (manual_grads.tiny_gpt.train) against autograd and torch's AdamW,
# and the hand side again, data-parallel over two processes. ----------------------------

STEPS = 20
HYPER = {"lr": 1e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1}  # nanoGPT's


def gpt2_init(device="cpu", dtype=torch.float64, seed: int = 0, **dims: int) -> Tensors:
    """The parameters as GPT-2 starts them (nanoGPT's ``_init_weights``), and a batch of
    token ids: weights and embeddings normal with standard deviation 0.02, the two
    projections into the residual stream (``w_proj``, ``w_fc_proj``) 0.02 over
    ``sqrt(2 L)``, biases 0, layer norms' ``gamma`` 1 and ``beta`` 0. ``idx`` is a random
    sequence of ``T + 1`` tokens but its last, ``target`` the same but its first. Drawn in
    float64 on the CPU, then cast and moved, from a generator seeded like the case's."""
    sizes = {**CASE.dims, **dims}
    gen = torch.Generator().manual_seed(CASE.seed + 100 + seed)
    drawn = {}
    for name in tiny_gpt.PARAMETERS:
        shape = CASE.shape(name, sizes)
        if name.endswith("gamma"):
            drawn[name] = torch.ones(shape, dtype=torch.float64)
        elif name.endswith("beta") or name.startswith("b_"):
            drawn[name] = torch.zeros(shape, dtype=torch.float64)
        else:
            std = 0.02 / (2 * sizes["L"]) ** 0.5 if name in ("w_proj", "w_fc_proj") else 0.02
            drawn[name] = torch.randn(shape, generator=gen, dtype=torch.float64) * std
    tokens = torch.randint(sizes["V"], (sizes["B"], sizes["T"] + 1), generator=gen)
    return {"idx": tokens[:, :-1].to(device), "target": tokens[:, 1:].to(device),
            **{k: t.to(device, dtype) for k, t in drawn.items()}}


def by_step(history) -> Tensors:
    """A training run's history as named tensors for the verdict: the loss at each step,
    every parameter after it."""
    named = {}
    for step, (loss, params) in enumerate(history, 1):
        named[f"loss at step {step}"] = loss
        named |= {f"{k} after step {step}": p for k, p in params.items()}
    return named


def hand_run(inputs: Tensors, steps: int = STEPS, lean: bool = False) -> Tensors:
    """Training on hand gradients (with ``lean``, the training form's) and the hand AdamW
    step, no autograd anywhere."""
    params = {k: inputs[k] for k in tiny_gpt.PARAMETERS}
    return by_step(tiny_gpt.train(params, inputs["idx"], inputs["target"], steps, lean=lean,
                                  **HYPER))


def torch_run(inputs: Tensors, steps: int = STEPS) -> Tensors:
    """The same training by autograd (through the same forward) and ``torch.optim.AdamW``."""
    leaves = {k: inputs[k].detach().clone().requires_grad_() for k in tiny_gpt.PARAMETERS}
    optimiser = torch.optim.AdamW(leaves.values(), **HYPER)
    history = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = CASE.forward({**inputs, **leaves})["loss"]
        loss.backward()
        optimiser.step()
        history.append((loss.detach(), {k: p.detach().clone() for k, p in leaves.items()}))
    return by_step(history)


def _data_parallel_rank(rank: int, world: int, port: int, folder: str) -> None:
    """One process of ``data_parallel_run``: its share of the batch, hand gradients, the
    average over the processes by ``all_reduce``, the hand AdamW step; saves its history."""
    import torch.distributed as dist

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's own connections on loopback too
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=60))
    try:
        inputs = torch.load(Path(folder) / "inputs.pt")
        share = inputs["idx"].shape[0] // world
        rows = slice(rank * share, (rank + 1) * share)

        def average(loss, grads):
            for t in (loss, *grads.values()):
                dist.all_reduce(t)  # the sum over the processes, in place
            return loss / world, {k: g / world for k, g in grads.items()}

        params = {k: inputs[k] for k in tiny_gpt.PARAMETERS}
        history = tiny_gpt.train(params, inputs["idx"][rows], inputs["target"][rows],
                                 inputs["steps"], average, **HYPER)
        torch.save(by_step(history), Path(folder) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_parallel_run(inputs: Tensors, folder: Path, steps: int = STEPS, world: int = 2,
                      timeout: float = 120.0) -> list[Tensors]:
    """``hand_run`` on ``world`` processes (torch.distributed, gloo, over 127.0.0.1), each
    on ``B / world`` sequences of the batch, their gradients and losses averaged by
    ``all_reduce`` before every step. Started and stopped here: every process is killed if
    one fails or ``timeout`` seconds pass. Returns each process's history."""
    if inputs["idx"].shape[0] % world:
        raise ValueError(f"inputs: B = {inputs['idx'].shape[0]} sequences do not split into "
                         f"{world} equal shares, and the mean of unequal shares' means is "
                         "not the batch's mean")
    torch.save({**inputs, "steps": steps}, folder / "inputs.pt")
    context = multiprocessing.get_context("spawn")
    port = free_port()
    ranks = [context.Process(target=_data_parallel_rank, args=(r, world, port, str(folder)),
                             daemon=True) for r in range(world)]
    for p in ranks:
        p.start()
    deadline = time.monotonic() + timeout
    try:
        while any(p.is_alive() for p in ranks) and time.monotonic() < deadline:
            if any(p.exitcode not in (None, 0) for p in ranks):
                break  # one failed: the others would wait for it in all_reduce
            multiprocessing.connection.wait([p.sentinel for p in ranks if p.is_alive()], 0.2)
    finally:
        for p in ranks:
            if p.is_alive():
                p.kill()
            p.join()
    codes = [p.exitcode for p in ranks]
    if codes != [0] * world:
        raise RuntimeError(f"data-parallel run: exit codes {codes} (a negative code is the "
                           f"signal that ended it; killed after {timeout:g} s if still running)")
    return [torch.load(folder / f"rank{r}.pt") for r in range(world)]
