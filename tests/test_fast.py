"""The CPU fast paths (dl_core/fast.py): the same answers as plain fp32 eager within bf16's or int8's rounding, the
model's methods and weights untouched, torch.compile's failures falling back to eager, and the switch that turns it
all off. How much faster is benchmarks/speed.py's business, not a test's."""
from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from dl_core import fast


class TinyConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def features(self, x):
        return self.body[:3](x)

    def forward(self, x):
        return self.body(x), {"mean": x.mean()}

    def describe(self) -> str:  # a method of the model's own, which the fast path must keep
        return "tiny"


def _pair(**kwargs):
    torch.manual_seed(0)
    reference = TinyConvNet().eval()
    model = TinyConvNet().eval()
    model.load_state_dict(reference.state_dict())
    return reference, fast.speed_up_convnet(model, **kwargs)


@pytest.mark.parametrize("bf16", [False, True])
def test_the_eager_fast_path_gives_fp32_outputs_close_to_the_reference(bf16):
    reference, model = _pair(bf16=bf16, compile=False)
    x = torch.rand(2, 3, 16, 16)
    with torch.inference_mode():
        expected, _ = reference(x)
        out, extra = model(x)
    assert out.dtype == torch.float32 and out.shape == expected.shape and extra["mean"].dtype == torch.float32
    assert torch.allclose(out, expected, atol=3e-2 if bf16 else 1e-5)
    assert model.describe() == "tiny" and set(model.state_dict()) == set(reference.state_dict())
    assert model.fast_path.describe().startswith("bf16 + channels_last" if bf16 else "channels_last")


def test_the_compiled_path_matches_and_gradients_still_flow_through_the_eager_one():
    reference, model = _pair(bf16=False, compile=True)
    x = torch.rand(1, 3, 12, 12)
    with torch.inference_mode():
        assert torch.allclose(model(x)[0], reference(x)[0], atol=1e-5)
    assert model.fast_path.compiled and model.fast_path.frozen and not model.fast_path.fallback
    assert model.fast_path.describe().endswith("torch.compile (frozen weights)")
    assert not torch._inductor.config.freezing  # frozen for this model's compile only, not the process
    note = model.fast_path.compile_note()  # once, for the call that compiled
    assert note.startswith("This first run also compiled the network") and model.fast_path.compile_note() == ""
    image = torch.rand(1, 3, 12, 12, requires_grad=True)  # a Gatys-style call: gradients to the input
    model(image)[0].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_a_network_compiled_for_any_size_keeps_its_weights_live_and_matches_at_each_size():
    reference, model = _pair(bf16=False, compile=True, dynamic=True)
    assert model.fast_path.compiled and not model.fast_path.frozen  # freezing measured slower for dynamic shapes
    with torch.inference_mode():
        for size in ((10, 14), (12, 12), (9, 16)):
            x = torch.rand(1, 3, *size)
            assert torch.allclose(model(x)[0], reference(x)[0], atol=1e-5)


def test_a_compile_failure_falls_back_to_eager_once_with_a_warning(monkeypatch, caplog):
    def broken_compile(fn, **kwargs):
        def compiled(*args, **kw):
            raise RuntimeError("no C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    reference, model = _pair(bf16=False, compile=True)
    x = torch.rand(1, 3, 8, 8)
    with caplog.at_level(logging.WARNING, logger="dl_core.fast"), torch.inference_mode():
        first, second = model(x)[0], model(x)[0]
    assert torch.allclose(first, reference(x)[0].detach(), atol=1e-5) and torch.equal(first, second)
    assert sum("torch.compile failed" in r.message for r in caplog.records) == 1
    assert model.fast_path.fallback == "RuntimeError" and not model.fast_path.compiled
    assert "compile failed, eager: RuntimeError" in model.fast_path.describe()


def test_dl_fast_path_0_leaves_the_model_as_plain_fp32_eager(monkeypatch):
    monkeypatch.setenv("DL_FAST_PATH", "0")
    model = TinyConvNet().eval()
    assert fast.speed_up_convnet(model) is model and "forward" not in model.__dict__
    assert model.fast_path.describe() == "fp32 eager"
    lstm = nn.LSTM(4, 4)
    assert fast.speed_up_recurrent(lstm) is lstm


def test_another_method_can_be_sped_up_alone():
    torch.manual_seed(0)
    reference, model = TinyConvNet().eval(), TinyConvNet().eval()
    model.load_state_dict(reference.state_dict())
    fast.speed_up_convnet(model, bf16=True, compile=False, methods=("features",))
    x = torch.rand(1, 3, 8, 8)
    with torch.inference_mode():
        features = model.features(x)
        assert features.dtype == torch.float32 and torch.allclose(features, reference.features(x), atol=3e-2)
        assert torch.allclose(model(x)[0], reference(x)[0], atol=1e-5)  # forward was left as it was: fp32
    assert "forward" not in model.__dict__ and "features" in model.__dict__


def test_dl_compile_0_keeps_bf16_and_skips_compiling(monkeypatch):
    monkeypatch.setenv("DL_COMPILE", "0")
    _, model = _pair(bf16=True)
    assert not model.fast_path.compiled and model.fast_path.bf16


class TinyRecurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.gru = nn.GRU(32, 32, batch_first=True)
        self.head = nn.Linear(32, 5)

    def forward(self, ids):
        x, _ = self.lstm(self.embed(ids))
        x, _ = self.gru(x)
        return self.head(x[:, -1])


def test_int8_dynamic_quantisation_swaps_the_recurrent_and_linear_layers_and_stays_close():
    torch.manual_seed(0)
    model = TinyRecurrent().eval()
    quantized = fast.speed_up_recurrent(model)
    assert quantized is not model and isinstance(model.lstm, nn.LSTM)  # the original is untouched
    kinds = {type(m).__module__ + "." + type(m).__name__ for m in quantized.modules()}
    assert {"torch.ao.nn.quantized.dynamic.modules.rnn.LSTM", "torch.ao.nn.quantized.dynamic.modules.rnn.GRU",
            "torch.ao.nn.quantized.dynamic.modules.linear.Linear"} <= kinds
    ids = torch.randint(0, 50, (3, 20))
    with torch.inference_mode():
        expected, got = model(ids), quantized(ids)
    assert torch.allclose(got, expected, atol=0.05) and quantized.fast_path.describe() == "int8 dynamic"


@pytest.mark.parametrize("bf16", [False, True])
def test_a_fast_copy_shares_the_tensors_it_does_not_convert(bf16):
    model = TinyRecurrent().eval()
    copied = fast.speed_up_recurrent(model, (nn.LSTM,), bf16=bf16)
    # what is not converted (an embedding, a head) stays one tensor, not two
    assert copied.embed.weight is model.embed.weight and copied.head.weight is model.head.weight
    assert model.lstm.weight_hh_l0.dtype == torch.float32  # the original's converted layers are untouched
    if bf16:
        assert copied.lstm.weight_hh_l0.dtype == torch.bfloat16


def test_folding_batch_norms_keeps_the_function_and_its_gradients():
    """EfficientNet-Lite0 (random weights, made-up batch-norm statistics) with every batch norm folded into its
    convolution, and the FeatureExtractor's fast path: the same features and input gradients to float rounding."""
    import copy

    from dl_core.perceptual import FeatureExtractor

    torch.manual_seed(0)
    plain = FeatureExtractor(pretrained=False)
    for bn in (m for m in plain.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2), bn.weight.data.uniform_(0.5, 1.5)
    fast_one = copy.deepcopy(plain).speed_up()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast_one.modules())
    assert fast_one.fast_path.describe() == "batch norm folded + channels_last"
    layers = ["stem", "block4", "block10"]
    grads = []
    for extractor in (plain, fast_one):
        image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
        features = extractor(image, layers)
        sum(f.square().mean() for f in features.values()).backward()
        grads.append((features, image.grad))
    (expected, expected_grad), (got, got_grad) = grads
    for name in layers:
        assert torch.allclose(got[name], expected[name], rtol=1e-4, atol=1e-4), name
    assert torch.allclose(got_grad, expected_grad, rtol=1e-3, atol=1e-6)
    logits = plain.net(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    assert torch.allclose(fast_one.net(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))), logits,
                          rtol=1e-4, atol=1e-4)  # the ImageNet head's batch norm too
