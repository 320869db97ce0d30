"""Experiment (issue 24): integrated gradients with the LSTMs' backward pass written out, against autograd.

    python -m benchmarks.attribution_backward [--repeats 5]      # from the repository root; ~1 minute

The sentiment tab's attribution (dl_core/ulmfit/infer.py) takes autograd through nn.LSTM: oneDNN's fused kernels
compute what training needs, the gradient of every weight as well as of the inputs. Integrated gradients need only
the inputs' gradient, and the path is linear in the embeddings, so `lstm_mean_path_gradient` here does less work,
in plain PyTorch ops:
- layer 1's input projection once for the whole path: W_ih (alpha e) + b = alpha (W_ih e) + b;
- the recurrences step by step, keeping the gates for the backward pass;
- back through time for the hidden and cell states only, no weight gradients;
- the embeddings' gradient once, for the path's mean: mean_alpha(dgates_alpha) W_ih, a linear map of the mean.
Its numbers are autograd's to float rounding (tests/test_ulmfit_inference.py compares the two). This script times
it against autograd on the bundled forward classifier, a 500-token text and 8 path points, with the recurrent
products in fp32 and in bf16 (fp32 state and sums), and prints a table. The tab keeps autograd: written out step
by step, each time step costs a few small products and element-wise ops, and at 8 path points those run far below
what oneDNN's fused LSTM kernels reach, which outweighs the weight gradients saved.

Both functions take the embedded text (T, E), the path's scales `alphas` (S,) (the points are alpha * embedded) and
`objective`, mapping the classifier's logits (S, C) to one number per point (S,), and return the mean over the
path of d objective / d point (T, E).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from dl_core.ulmfit.infer import mean_path_gradient
from dl_core.ulmfit.model import TextClassifier, concat_pool

Objective = Callable[[torch.Tensor], torch.Tensor]  # logits (S, C) -> one number per path point (S,)


@dataclass
class _LayerTape:
    """What one LSTM layer's forward pass keeps for its backward pass, time-major."""
    gates: torch.Tensor  # (T, S, 4H) after their nonlinearities, PyTorch's order: input, forget, cell (tanh), output
    cells: torch.Tensor  # (T, S, H) the cell state c_t
    tanh_cells: torch.Tensor  # (T, S, H) tanh(c_t)


def _lstm_forward(projected: torch.Tensor, w_hh: torch.Tensor) -> tuple[torch.Tensor, _LayerTape]:
    """projected (T, S, 4H) = x W_ih^T + b_ih + b_hh for every step -> outputs h_t (T, S, H) and the tape.
    `w_hh` in bf16 multiplies the state in bf16 (fp32 sums and state)."""
    steps, batch, four_h = projected.shape
    hidden = four_h // 4
    gates = torch.empty_like(projected)
    cells = projected.new_empty(steps, batch, hidden)
    tanh_cells = torch.empty_like(cells)
    outputs = torch.empty_like(cells)
    w_hh_t = w_hh.t()  # (H, 4H)
    h = projected.new_zeros(batch, hidden)
    c = projected.new_zeros(batch, hidden)
    cell_gate = slice(2 * hidden, 3 * hidden)
    for t in range(steps):
        z = (torch.addmm(projected[t], h, w_hh_t) if w_hh.dtype == torch.float32
             else projected[t] + (h.to(w_hh.dtype) @ w_hh_t).float())  # (S, 4H)
        torch.sigmoid(z, out=gates[t])
        gates[t][:, cell_gate] = torch.tanh(z[:, cell_gate])
        i, f, g, o = gates[t].chunk(4, dim=1)
        c = torch.addcmul(f * c, i, g, out=cells[t])
        h = torch.mul(o, torch.tanh(c, out=tanh_cells[t]), out=outputs[t])
    return outputs, _LayerTape(gates, cells, tanh_cells)


def _lstm_backward(d_outputs: torch.Tensor, tape: _LayerTape, w_hh: torch.Tensor) -> torch.Tensor:
    """d objective / d outputs (T, S, H) -> d objective / d projected inputs (T, S, 4H), back through time."""
    steps, batch, hidden = d_outputs.shape
    i, f, g, o = tape.gates.chunk(4, dim=2)  # each (T, S, H)
    previous_cells = torch.cat([tape.cells.new_zeros(1, batch, hidden), tape.cells[:-1]])  # c_{t-1}
    # Everything that does not depend on the incoming gradient, for all steps at once (a few big element-wise
    # ops instead of many small ones inside the loop):
    #   dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 - tanh^2 c_t)
    #   dz_i = dc_t g_t i_t (1 - i_t),  dz_f = dc_t c_{t-1} f_t (1 - f_t),  dz_g = dc_t i_t (1 - g_t^2)
    #   dz_o = dh_t tanh(c_t) o_t (1 - o_t)
    cell_from_h = o * (1 - tape.tanh_cells ** 2)  # (T, S, H)
    from_cell = torch.stack([g * i * (1 - i), previous_cells * f * (1 - f), i * (1 - g ** 2)], dim=2)  # (T, S, 3, H)
    output_from_h = tape.tanh_cells * o * (1 - o)  # (T, S, H)
    d_projected = d_outputs.new_empty(steps, batch, 4, hidden)
    dh_next = d_outputs.new_zeros(batch, hidden)
    dc_next = d_outputs.new_zeros(batch, hidden)
    for t in range(steps - 1, -1, -1):
        dh = d_outputs[t] + dh_next
        dc = torch.addcmul(dc_next, dh, cell_from_h[t])
        torch.mul(from_cell[t], dc[:, None], out=d_projected[t, :, :3])
        torch.mul(dh, output_from_h[t], out=d_projected[t, :, 3])
        dc_next = dc * f[t]
        dh_next = (d_projected[t].view(batch, 4 * hidden).to(w_hh.dtype) @ w_hh).float()  # (S, H)
    return d_projected.view(steps, batch, 4 * hidden)


def _lstm_weights(layer: nn.Module, recurrent_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lstm = layer.lstm
    return (lstm.weight_ih_l0.detach(), lstm.weight_hh_l0.detach().to(recurrent_dtype),
            (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach())


@torch.no_grad()
def lstm_mean_path_gradient(classifier: TextClassifier, embedded: torch.Tensor, alphas: torch.Tensor,
                            objective: Objective, recurrent_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """mean_path_gradient's numbers with less work (module docstring); the recurrent products in
    `recurrent_dtype`. Eval mode: dropout is off. (T, E)."""
    layers = [_lstm_weights(layer, recurrent_dtype) for layer in classifier.encoder.layers]
    (w_ih, w_hh, bias), later = layers[0], layers[1:]
    embedded = embedded.float()
    scales = alphas.float()[None, :, None]  # (1, S, 1)
    projected = torch.addcmul(bias, (embedded @ w_ih.t())[:, None, :], scales)  # (T, S, 4H): layer 1 on the path
    outputs, tape = _lstm_forward(projected, w_hh)
    tapes = [tape]
    for w_ih, w_hh, bias in later:
        steps, batch, width = outputs.shape
        projected = torch.addmm(bias, outputs.view(steps * batch, width), w_ih.t()).view(steps, batch, -1)
        outputs, tape = _lstm_forward(projected, w_hh)
        tapes.append(tape)

    with torch.enable_grad():  # the head is small: autograd from the last layer's outputs
        top = outputs.transpose(0, 1).detach().requires_grad_(True)  # (S, T, E)
        lengths = torch.full((top.size(0),), top.size(1))
        (d_top,) = torch.autograd.grad(objective(classifier.head(concat_pool(top, lengths))).sum(), top)
    d_outputs = d_top.transpose(0, 1).contiguous()  # (T, S, E)

    for (w_ih, w_hh, _), tape in zip(reversed(layers[1:]), reversed(tapes[1:])):
        d_projected = _lstm_backward(d_outputs, tape, w_hh)  # (T, S, 4H)
        steps, batch, four_h = d_projected.shape
        d_outputs = (d_projected.view(steps * batch, four_h) @ w_ih).view(steps, batch, -1)
    d_projected = _lstm_backward(d_outputs, tapes[0], layers[0][1])
    return d_projected.mean(1) @ layers[0][0]  # (T, E): mean over the path, then the linear map


def main(argv: list[str] | None = None) -> None:
    import argparse
    import statistics
    import time

    from dl_core.hub import load_model
    from dl_core.paths import WEIGHTS_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=500)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    classifier = load_model(TextClassifier, WEIGHTS_DIR / "sentiment").eval()
    ids = torch.randint(len(classifier.config.encoder.vocab) // 10, len(classifier.config.encoder.vocab), (args.tokens,))
    with torch.no_grad():
        embedded = classifier.encoder.embedding(ids)  # (T, E)
    alphas = (torch.arange(8, dtype=torch.float32) + 0.5) / 8  # the tab's 8 midpoints

    def margin(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, 1] - logits[:, 0]

    ways = {
        "autograd through nn.LSTM (the tab's)": lambda: mean_path_gradient(classifier, embedded, alphas, margin),
        "written out, fp32": lambda: lstm_mean_path_gradient(classifier, embedded, alphas, margin),
        "written out, bf16 recurrent products": lambda: lstm_mean_path_gradient(classifier, embedded, alphas, margin,
                                                                                torch.bfloat16),
    }
    reference_scores = (embedded * ways["autograd through nn.LSTM (the tab's)"]()).sum(-1)
    times = {name: [] for name in ways}
    for _ in range(args.repeats + 1):  # in turn, the first round a warm-up
        for name, way in ways.items():
            start = time.perf_counter()
            way()
            times[name].append((time.perf_counter() - start) * 1000)
    print(f"integrated gradients, forward classifier, {args.tokens} tokens, 8 path points, "
          f"{torch.get_num_threads()} threads, medians of {args.repeats}")
    print("| gradient | ms | ÷ autograd | scores' relative L2 difference |\n|---|---|---|---|")
    base = statistics.median(times["autograd through nn.LSTM (the tab's)"][1:])
    for name, way in ways.items():
        ms = statistics.median(times[name][1:])
        scores = (embedded * way()).sum(-1)
        difference = float((scores - reference_scores).norm() / reference_scores.norm())
        print(f"| {name} | {ms:.1f} | {ms / base:.2f} | {difference:.1e} |")


if __name__ == "__main__":
    main()
