"""Upsampling tails rewritten for the CPU: a narrowing convolution after a pixel shuffle runs
before it, so the wide tensor at the output size is never made.

An SR network's tail (EDSR, SRResNet, CARN, ...) upsamples with convolutions and pixel shuffles
and ends in a convolution to RGB at the output size. On the CPU that last step costs far more
than its share of the work: at x4, EDSR-baseline's last shuffle writes a 64-channel tensor at
the output size (134 MB in bf16 for a 256x256 input), and the 3-channel convolution that reads
it gives the matrix units 3 output columns. On an AMX Xeon the shuffle and that convolution were
a fifth of the compiled bf16 network's time.

The rewrite is exact: ``PixelShuffle(r)`` then a stride-1 ``k x k`` 'same' convolution
``C -> c`` equals a convolution ``C r^2 -> c r^2`` on the unshuffled tensor (kernel
``2 ceil((k // 2) / r) + 1``, zero padding included) followed by ``PixelShuffle(r)`` on
``c r^2`` channels. It costs ``r^2`` times the multiply-adds, so it is done only where the
convolution narrows the features (``c r^2 <= C``), as a convolution to RGB does.
:func:`fold_tails` applies it, in place, to every ``nn.Sequential`` made only of row-local
layers (such convolutions, pixel shuffles, pointwise activations; nested Sequentials included).
"""

from __future__ import annotations

import torch
from torch import nn

_POINTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Identity,
)  # fmt: skip


def _is_shuffle(module: nn.Module) -> bool:
    return isinstance(module, nn.PixelShuffle)  # both callers fold before any layout change


def _is_local_conv(module: nn.Module) -> bool:
    if type(module) is not nn.Conv2d:
        return False
    kh, kw = module.kernel_size
    return (
        kh % 2 == 1
        and kw % 2 == 1
        and module.stride == (1, 1)
        and module.dilation == (1, 1)
        and module.padding == (kh // 2, kw // 2)
        and module.padding_mode == "zeros"
    )


def _foldable(module: nn.Module) -> bool:
    return _is_local_conv(module) and module.groups == 1


def local_layers(seq: nn.Module) -> list[nn.Module] | None:
    """The layers of ``seq`` (nested Sequentials flattened) if every one is row-local, else None."""
    layers: list[nn.Module] = []
    for child in seq.children():
        if isinstance(child, nn.Sequential):
            inner = local_layers(child)
            if inner is None:
                return None
            layers += inner
        elif _is_local_conv(child) or _is_shuffle(child) or isinstance(child, _POINTWISE):
            layers.append(child)
        else:
            return None
    return layers


@torch.no_grad()
def fold_shuffle_conv(conv: nn.Conv2d, r: int) -> nn.Conv2d:
    """The convolution that, applied before ``PixelShuffle(r)``, equals ``conv`` after it."""
    if not _foldable(conv):
        raise ValueError("fold_shuffle_conv: only stride-1 'same' ungrouped convolutions fold")
    cout, cin, kh, kw = conv.weight.shape
    ry, rx = kh // 2, kw // 2
    py, px = -(-ry // r), -(-rx // r)  # the folded kernel's radius, in unshuffled pixels
    weight = conv.weight.new_zeros(cout * r * r, cin * r * r, 2 * py + 1, 2 * px + 1)
    for a in range(r):  # the output's phase (row, column) inside each r x r block
        for b in range(r):
            rows = torch.arange(cout) * r * r + a * r + b
            for dy in range(-ry, ry + 1):
                di, u = divmod(a + dy, r)
                for dx in range(-rx, rx + 1):
                    dj, v = divmod(b + dx, r)
                    cols = torch.arange(cin) * r * r + u * r + v
                    tap = conv.weight[:, :, dy + ry, dx + rx]
                    weight[rows[:, None], cols[None, :], di + py, dj + px] += tap
    shape = (cin * r * r, cout * r * r, tuple(weight.shape[-2:]))
    folded = nn.Conv2d(*shape, padding=(py, px), bias=conv.bias is not None)
    folded = folded.to(conv.weight.device, conv.weight.dtype)
    folded.weight.copy_(weight)
    if conv.bias is not None:
        folded.bias.copy_(conv.bias.repeat_interleave(r * r))
    return folded


def _folded(layers: list[nn.Module]) -> tuple[list[nn.Module], int]:
    out: list[nn.Module] = []
    count = 0
    for layer in layers:
        previous = out[-1] if out else None
        if (
            previous is not None
            and _is_shuffle(previous)
            and _foldable(layer)
            and layer.out_channels * previous.upscale_factor**2 <= layer.in_channels
        ):
            r = previous.upscale_factor
            out[-1:] = [fold_shuffle_conv(layer, r), nn.PixelShuffle(r)]
            count += 1
        else:
            out.append(layer)
    return out, count


def fold_tails(net: nn.Module) -> int:
    """Fold (in place) every narrowing convolution that follows a pixel shuffle inside an
    ``nn.Sequential`` of row-local layers of ``net``; returns how many were folded."""
    count = 0
    for name, child in list(net.named_children()):
        layers = local_layers(child) if isinstance(child, nn.Sequential) else None
        if layers and any(_is_shuffle(m) for m in layers):
            layers, folded = _folded(layers)
            if folded:
                setattr(net, name, nn.Sequential(*layers))
                count += folded
        else:
            count += fold_tails(child)
    return count


__all__ = ["fold_shuffle_conv", "fold_tails", "local_layers"]
