"""CPU fast paths for the app's models, from what PyTorch ships: the tab runs the shipped path, and
`benchmarks/speed.py` times it against the same weights run as plain fp32 eager PyTorch.

    speed_up_convnet(model)      # in place: bf16 autocast where the CPU multiplies bf16 natively, channels_last,
                                 # torch.compile (inductor; weights frozen into the compiled code where the input
                                 # size is fixed); outputs come back in float32, eager where compiling fails
    speed_up_recurrent(model)    # a copy with int8 dynamic quantisation of its LSTM/GRU and Linear layers
                                 # (bf16=True: a copy with its LSTMs in bf16, which also gives gradients)
    with_inference_copy(model)   # what an app holds when it also takes gradients: the bf16 copy, or fp32 + int8
    quantize_int8(model, layers) # in place, whatever DL_FAST_PATH says (translation's explicit precision)
    fast_paths_enabled()         # False with DL_FAST_PATH=0: every model runs as plain fp32 eager (the reference)
    compile_enabled()            # False with DL_COMPILE=0: bf16 and layouts stay, torch.compile is skipped (the
                                 # tests set it: each compile costs 5-20 s of CPU, once per model and input shape)

Why these: a batch-1 conv net on 2 cores is bound by memory traffic and by the many small element-wise ops between
its convolutions. bf16 halves the bytes (AVX512-BF16 / AMX multiply them natively), channels_last is oneDNN's own
layout, and inductor fuses the element-wise ops into the convolutions' neighbours. For one input size, inductor's
freezing also treats the weights as constants: batch norms fold, weights are cast to bf16 and packed in oneDNN's
blocked layout once at compile time rather than on every call (detection 0.54 -> 0.36 of fp32 eager, a CIFAR
DarkNet 0.81 -> 0.49); for inputs of any size it measured slower (instant style 0.42 -> 0.60), so it is off there.
Recurrent layers at batch 1 are matrix-vector products bound by reading the weights: int8 reads a quarter of the
bytes (fbgemm, VNNI). A whole text read at once (a classifier, integrated gradients' batch of path points) is
compute-bound instead, and there oneDNN's bf16 LSTM kernels beat int8, and give gradients, which int8 copies cannot.
torch.compile needs a C++ compiler where it runs (on a Space, packages.txt installs g++); without one the eager
bf16 path runs, and the tab works the same, a little slower.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)


def fast_paths_enabled() -> bool:
    """The app's default; DL_FAST_PATH=0 runs every model as plain fp32 eager PyTorch (to compare, or to debug)."""
    return os.environ.get("DL_FAST_PATH", "1") != "0"


def compile_enabled() -> bool:
    """Whether speed_up_convnet compiles by default; DL_COMPILE=0 skips it (bf16 and channels_last stay)."""
    return os.environ.get("DL_COMPILE", "1") != "0"


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): elsewhere bf16 is emulated, and slower."""
    return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


@dataclass
class FastPath:
    """What was applied to a model, for the tab's notes and the benchmark's table."""
    bf16: bool = False
    channels_last: bool = False
    compiled: bool = False
    frozen: bool = False  # compiled with its weights as constants (inductor's freezing)
    int8: bool = False
    folded_batchnorm: bool = False
    fallback: str = ""  # why compiling was abandoned, if it was
    compile_seconds: float = 0.0  # how long the first compiled call took (it compiles), not yet reported

    def compile_note(self) -> str:
        """Once, after the call that compiled: a note for the timing a tab shows (which that call inflated)."""
        seconds, self.compile_seconds = self.compile_seconds, 0.0
        return f"This first run also compiled the network for this CPU ({seconds:.0f} s, once)." if seconds else ""

    def describe(self) -> str:
        parts = [name for name, on in (("batch norm folded", self.folded_batchnorm), ("bf16", self.bf16),
                                       ("channels_last", self.channels_last),
                                       ("torch.compile" + " (frozen weights)" * self.frozen, self.compiled),
                                       ("int8 dynamic", self.int8)) if on]
        text = " + ".join(parts) or "fp32 eager"
        return f"{text} (compile failed, eager: {self.fallback})" if self.fallback else text


def _float32(output):
    """bf16 tensors in a (nested) output back to float32, so callers see what the fp32 model gives."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.dtype == torch.bfloat16 else output
    if isinstance(output, tuple) and hasattr(output, "_fields"):  # a namedtuple
        return type(output)(*(_float32(o) for o in output))
    if isinstance(output, (tuple, list)):
        return type(output)(_float32(o) for o in output)
    if isinstance(output, dict):
        return {k: _float32(v) for k, v in output.items()}
    return output


def speed_up_convnet(model: nn.Module, bf16: bool | None = None, compile: bool | None = None,
                     channels_last: bool = True, dynamic: bool | None = None,
                     methods: tuple[str, ...] = ("forward",), freeze: bool | None = None) -> nn.Module:
    """Give an eval-mode conv net the CPU fast path, in place (its methods, state_dict and class stay as they are:
    only the `methods` are wrapped). bf16: autocast to bf16 (default: where native). compile: torch.compile its forward
    for inference (default: unless DL_COMPILE=0; calls with gradients enabled run the eager bf16 forward); dynamic:
    torch.compile's (True for inputs of many sizes: one compile for all of them); methods: which of the model's
    methods to wrap (e.g. DarkNet's `stages`, which its forward calls, and the tab too: wrap that alone, not both);
    freeze: compile with the weights as constants (default: unless dynamic), so the weights must not change after
    the first compiled call: for an app's loaded model, not one that trains.
    Returns the model, with `model.fast_path` (a FastPath) saying what was applied (including batch norms folded
    beforehand: see `batchnorm_folded`). Does nothing with DL_FAST_PATH=0."""
    if not fast_paths_enabled() or hasattr(model, "fast_path"):
        model.__dict__.setdefault("fast_path", FastPath())
        return model
    bf16 = native_bf16() if bf16 is None else bf16
    compile = compile_enabled() if compile is None else compile
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    freeze = compile and (not dynamic if freeze is None else freeze)
    path = FastPath(bf16=bf16, channels_last=channels_last, compiled=compile, frozen=freeze,
                    folded_batchnorm=batchnorm_folded(model))
    for name in methods:
        setattr(model, name, _fast_method(model, getattr(model, name), path, bf16, compile, dynamic, freeze))
    model.fast_path = path
    return model


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Identity:
    """Fold a frozen (eval-mode) batch norm into the convolution before it, in place: the same function, exactly up
    to float rounding, with one op fewer each way (forward and, for a Gatys step, backward). Returns the Identity
    that takes the batch norm's place."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C,)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=conv.weight.requires_grad)
    return nn.Identity()


def batchnorm_folded(model: nn.Module) -> bool:
    """Whether a part of `model` had its batch norms folded (a network's `fold_batchnorm` marks itself so)."""
    return any(getattr(module, "batchnorm_folded", False) for module in model.modules())


RECURRENT_LAYERS = (nn.LSTM, nn.GRU, nn.Linear)
_COMPILED_CALLS = threading.Lock()  # also: a first call compiles, and two requests at once must not both do it


def _fast_method(model: nn.Module, eager, path: FastPath, bf16: bool, compile: bool, dynamic: bool | None,
                 freeze: bool):
    """`eager` (a bound method of `model`) under bf16 autocast with float32 outputs, compiled for inference."""

    def autocast_call(*args, **kwargs):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return _float32(eager(*args, **kwargs))

    compiled = torch.compile(autocast_call, dynamic=dynamic) if compile else None
    first = True

    def call(*args, **kwargs):
        nonlocal compiled, first
        if compiled is not None and not torch.is_grad_enabled():
            try:
                # inductor's freezing setting is process-wide, and read while dynamo traces (on a call that
                # compiles): compiled calls take turns, each under its own setting
                with _COMPILED_CALLS, torch._inductor.config.patch(freezing=freeze):
                    started = time.perf_counter()
                    out = compiled(*args, **kwargs)
                    if first:
                        path.compile_seconds, first = time.perf_counter() - started, False
                    return out
            except Exception as err:  # noqa: BLE001 - inductor's failures (no C++ compiler, an unsupported op) are
                # many types; the eager call computes the same thing, so the tab keeps working, a little slower
                log.warning("torch.compile failed for %s, running eager: %s", type(model).__name__, err)
                path.compiled, path.fallback, compiled = False, type(err).__name__, None
        return autocast_call(*args, **kwargs)

    return call


def speed_up_recurrent(model: nn.Module, layers: tuple[type[nn.Module], ...] = RECURRENT_LAYERS,
                       bf16: bool = False) -> nn.Module:
    """A copy of an eval-mode recurrent model with int8 dynamic quantisation of its `layers` (weights int8,
    activations quantised per call); `model.fast_path` says so. The model itself with DL_FAST_PATH=0.
    (A quantised Linear's `weight` is a method, not a tensor: leave Linear out where code reads `.weight`.)
    bf16=True: instead, a copy whose `layers` hold bf16 weights (the model's code must feed them inputs of their
    weights' dtype, as dl_core.ulmfit's WeightDropLSTM does); unlike int8, autograd goes through it."""
    if not fast_paths_enabled():
        model.__dict__.setdefault("fast_path", FastPath())
        return model
    converted = _copy_of_layers(model.eval(), layers)
    if bf16:
        for module in converted.modules():
            if isinstance(module, layers):
                module.to(torch.bfloat16)
        converted.fast_path = FastPath(bf16=True)
        return converted
    quantized = quantize_int8(converted, layers)
    quantized.fast_path = FastPath(int8=True)
    return quantized


def quantize_int8(model: nn.Module, layers: tuple[type[nn.Module], ...] = RECURRENT_LAYERS) -> nn.Module:
    """`model` with int8 dynamic quantisation of its `layers`, in place (torch.ao's quantize_dynamic: weights int8,
    activations quantised per call; fbgemm on x86, qnnpack on ARM), whatever DL_FAST_PATH says."""
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notices: it still ships, and works
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)
        return quantize_dynamic(model, set(layers), dtype=torch.qint8, inplace=True)


def _copy_of_layers(model: nn.Module, layers: tuple[type[nn.Module], ...]) -> nn.Module:
    """A copy of `model` whose `layers` are copies, while every other parameter and buffer (embeddings, heads) is
    the model's own tensor, shared: a fast copy costs memory for what it converts, not for the whole model."""
    import copy

    converted = {id(t) for m in model.modules() if isinstance(m, layers) for t in (*m.parameters(), *m.buffers())}
    shared = {id(t): t for t in (*model.parameters(), *model.buffers()) if id(t) not in converted}
    return copy.deepcopy(model, memo=shared)


def with_inference_copy(model: nn.Module, layers: tuple[type[nn.Module], ...] = RECURRENT_LAYERS,
                        prefer_bf16: bool = False) -> nn.Module:
    """What an app holds for a recurrent model whose gradients it also takes. By default: the fp32 model, carrying
    an int8 copy (speed_up_recurrent) that `inference_copy(model)` picks for the calls that need no gradients
    (classify), while what needs them (integrated gradients) goes through the fp32 model. prefer_bf16 (for whole
    texts read at once, see the module docstring): where this CPU multiplies bf16 natively, the bf16 copy alone,
    which serves both kinds of call (the fp32 layers are not kept). The attached copy is not a submodule: the
    model's state_dict and parameters stay its own. The model itself with DL_FAST_PATH=0."""
    if not fast_paths_enabled():
        return model
    if prefer_bf16 and native_bf16():
        return speed_up_recurrent(model, layers, bf16=True)
    object.__setattr__(model, "_inference_copy", speed_up_recurrent(model, layers))
    return model


def inference_copy(model):
    """The int8 copy `with_inference_copy` attached, else the model itself (a bf16 copy, an NBSVM, a reference run)."""
    return getattr(model, "__dict__", {}).get("_inference_copy", model)
