"""The architecture catalog behind ``srkit archs``: parameters, MACs and references per arch.

Compute is counted in MACs (multiply-accumulates; 1 MAC = 2 FLOPs) by forward hooks on every
``Conv2d``, ``ConvTranspose2d`` and ``Linear`` for one 256 x 256 LR input. Element-wise work
(activations, attention products, pooling, the bicubic pre-upsampling) is not counted. The
networks are built on PyTorch's ``meta`` device, so nothing is allocated or computed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from srkit.archs.registry import ARCHS, build, count_params


@dataclass(frozen=True)
class CatalogRow:
    name: str
    scale: int
    params: int
    macs: int
    published_params: int | None
    convention: str
    reference: str
    description: str


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass of ``model`` on an input of ``input_shape``.

    It runs on the ``meta`` device: a model built there is used as it is, any other is copied
    there first (its weights untouched), so nothing is computed either way.
    """
    if any(not p.is_meta for p in model.parameters()):
        model = copy.deepcopy(model).to("meta")
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.ConvTranspose2d):
            kh, kw = module.kernel_size
            total += inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            model(torch.empty(input_shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return total


def _convention_text(name: str) -> str:
    c = ARCHS[name].convention
    rng = "[0,1]" if c.value_range == 1.0 else "[0,255]"
    text = f"{c.channels.upper() if c.channels == 'y' else 'RGB'} {rng}"
    return text + (" -mean" if c.mean is not None else "")


def catalog_rows(size: int = 256, names: list[str] | None = None) -> list[CatalogRow]:
    """One row per (arch, scale) with the paper configuration, MACs for a size x size LR input."""
    rows = []
    for name in names or list(ARCHS):
        spec = ARCHS[name]
        for scale in spec.scales:
            with torch.device("meta"):
                net = build(name, scale=scale, **spec.paper_options)
            shape = (1, spec.convention.in_channels, size, size)
            rows.append(
                CatalogRow(
                    name=name,
                    scale=scale,
                    params=count_params(net),
                    macs=count_macs(net, shape),
                    published_params=spec.published_params.get(scale),
                    convention=_convention_text(name),
                    reference=spec.reference.short(),
                    description=spec.description,
                )
            )
    return rows


def _human(n: float) -> str:
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def print_catalog(rows: list[CatalogRow] | None = None, size: int = 256) -> None:
    """Print the catalog as a rich table, one line per (architecture, scale)."""
    from rich.console import Console
    from rich.table import Table

    rows = rows if rows is not None else catalog_rows(size)
    table = Table(title=f"srkit architectures: params, MACs for one {size}x{size} LR input")
    table.add_column("arch")
    table.add_column("scale", justify="right")
    table.add_column("params", justify="right")
    table.add_column("GMACs", justify="right")
    table.add_column("input")
    table.add_column("reference")
    previous = None
    for r in rows:
        first = r.name != previous
        table.add_row(
            r.name if first else "",
            f"x{r.scale}",
            f"{r.params:,}",
            f"{r.macs / 1e9:,.1f}",
            r.convention if first else "",
            r.reference if first else "",
            end_section=False,
        )
        previous = r.name
    Console(width=max(100, Console().width)).print(table)
    print("MACs = multiply-accumulates of Conv2d/ConvTranspose2d/Linear (1 MAC = 2 FLOPs).")
