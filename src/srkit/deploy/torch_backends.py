"""PyTorch backends: eager, channels_last, bf16 autocast, ``torch.compile``.

* ``torch`` / fp32: the network as it is (NCHW), the reference every other backend is held to;
* ``torch`` / bf16: channels_last with CPU autocast to bfloat16 (oneDNN bf16 convolutions);
* ``torch-cl`` / fp32: channels_last memory format (oneDNN's preferred layout for convolutions);
* ``torch-compile`` / fp32, bf16: ``torch.compile`` (Inductor, C++ codegen; needs a compiler),
  channels_last, frozen weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from srkit.archs.adapter import NetworkModel
from srkit.deploy.common import CoreNet, DeployError, core_of, wrap


class ChannelsLast(nn.Module):
    """Run ``core`` in channels_last (optionally under bf16 autocast); NCHW float32 out."""

    def __init__(self, core: CoreNet, bf16: bool = False) -> None:
        super().__init__()
        self.core = core.to(memory_format=torch.channels_last)
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
