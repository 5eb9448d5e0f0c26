"""PyTorch backends: eager, channels_last, bf16 autocast, ``torch.compile``.

* ``torch`` / fp32: the network as it is (NCHW), the reference every other backend is held to;
* ``torch`` / bf16: channels_last with CPU autocast to bfloat16 (oneDNN bf16 convolutions);
* ``torch-cl`` / fp32: channels_last memory format (oneDNN's preferred layout for convolutions);
* ``torch-compile`` / fp32, bf16: ``torch.compile`` (Inductor, C++ codegen; needs a compiler),
  channels_last, frozen weights.

In channels_last, every ``nn.PixelShuffle`` is replaced by :class:`ChannelsLastPixelShuffle`,
which moves whole runs of channels. ``F.pixel_shuffle`` on a channels_last tensor is slow in
eager mode, and Inductor generates a scalar loop for it with the channel loop outermost; on a
Zen 4 core that loop was a third of EDSR-baseline x4's compiled bf16 time, and made
``torch-compile/bf16`` slower than eager bf16. A narrowing convolution after a pixel shuffle
(EDSR's convolution to RGB) runs folded before it (:mod:`srkit.deploy.tails`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from srkit.archs.adapter import NetworkModel
from srkit.deploy.common import CoreNet, DeployError, core_of, wrap
from srkit.deploy.tails import fold_tails


class ChannelsLastPixelShuffle(nn.Module):
    """``nn.PixelShuffle`` for channels_last tensors: the same values, in channels_last.

    A channels_last tensor is an (N, H, W, C) array; PixelShuffle's channel order is
    (C_out, r, r), so the shuffle is a view of that array as (N, H, W, C_out, r, r), permuted
    to (N, H, r, W, r, C_out) and copied: one copy whose loops run over output memory in
    order, with the C_out channels innermost. Other layouts take ``F.pixel_shuffle``.
    """

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = int(upscale_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.upscale_factor
        if x.dim() != 4 or not x.is_contiguous(memory_format=torch.channels_last) or r == 1:
            return nn.functional.pixel_shuffle(x, r)
        n, c, h, w = x.shape
        out = c // (r * r)
        nhwc = x.permute(0, 2, 3, 1).reshape(n, h, w, out, r, r)
        shuffled = nhwc.permute(0, 1, 4, 2, 5, 3).reshape(n, h * r, w * r, out)
        return shuffled.permute(0, 3, 1, 2)  # NCHW shape, channels_last memory

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


def channels_last_shuffles(core: nn.Module) -> nn.Module:
    """Replace every ``nn.PixelShuffle`` in ``core`` by :class:`ChannelsLastPixelShuffle`
    (in place; returns ``core``)."""
    for module in list(core.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.PixelShuffle:
                setattr(module, name, ChannelsLastPixelShuffle(child.upscale_factor))
    return core


class ChannelsLast(nn.Module):
    """Run ``core`` in channels_last (optionally under bf16 autocast); NCHW float32 out.
    ``core`` is changed in place (its pixel shuffles); pass a copy."""

    def __init__(self, core: CoreNet, bf16: bool = False) -> None:
        super().__init__()
        fold_tails(core)
        self.core = channels_last_shuffles(core).to(memory_format=torch.channels_last)
        self.bf16 = bf16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = self.core(x)
        else:
            out = self.core(x)
        return out.float().contiguous()


class Compiled(nn.Module):
    """``torch.compile`` of a channels_last core (weights frozen for Inductor's CPU path)."""

    def __init__(self, core: CoreNet, bf16: bool = False) -> None:
        super().__init__()
        self.inner = ChannelsLast(core, bf16=bf16)
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        self.compiled = torch.compile(self.inner, dynamic=None)  # static first, then dynamic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.compiled(x)


def prepare_torch(model: NetworkModel, backend: str, precision: str) -> NetworkModel:
    core = core_of(model)
    if backend == "torch":
        if precision == "fp32":
            return model
        if precision == "bf16":
            return wrap(model, ChannelsLast(copy.deepcopy(core), bf16=True), "torch/bf16")
    elif backend == "torch-cl":
        if precision == "fp32":
            return wrap(model, ChannelsLast(copy.deepcopy(core)), "torch-cl/fp32")
        if precision == "bf16":
            return wrap(model, ChannelsLast(copy.deepcopy(core), bf16=True), "torch-cl/bf16")
    elif backend == "torch-compile" and precision in ("fp32", "bf16"):
        module = Compiled(copy.deepcopy(core), bf16=precision == "bf16")
        return wrap(model, module, f"torch-compile/{precision}")
    raise DeployError(f"backend {backend} has no {precision}: int8 runs on onnxruntime or openvino")
