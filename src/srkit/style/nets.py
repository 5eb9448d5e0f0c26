"""Networks of neural style transfer: Johnson's TransformerNet, AdaIN and its decoder.

TransformerNet (Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution", ECCV 2016, as pytorch/examples ``fast_neural_style`` builds it): a 9x9 conv,
two stride-2 3x3 convs, five residual blocks, two nearest-upsample + 3x3 convs and a 9x9 conv
back to RGB, reflection padding and instance normalisation (Ulyanov et al. 2016) throughout.

AdaIN (Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization", ICCV 2017): the content features take the channel mean and standard deviation of
the style features; a decoder mirrored on the encoder (to relu4_1) turns them back into an image.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvLayer(nn.Sequential):
    """Reflection padding + conv (``kernel // 2`` padding keeps the size at stride 1)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride))


class ResidualBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus the input (Gross & Wilber's block without the final ReLU)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            ConvLayer(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """Nearest-neighbour upsampling then a conv (no transposed-conv checkerboards)."""

    def __init__(self, cin: int, cout: int, kernel: int, upsample: int) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = ConvLayer(cin, cout, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.conv(x)


OUTPUTS = ("tanh", "linear")


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    return output


def output_layer(z: torch.Tensor, output: str) -> torch.Tensor:
    """The last conv's ``z`` (in [0, 1] units) -> the image: ``"tanh"`` is
    ``0.5 + 0.5 tanh(2 (z - 0.5))`` (the identity at mid-grey, saturating at 0 and 1: Johnson et
    al.'s scaled-tanh output layer), ``"linear"`` leaves ``z`` unbounded."""
    return 0.5 + 0.5 * torch.tanh(2.0 * (z - 0.5)) if output == "tanh" else z


class TransformerNet(nn.Module):
    """RGB in [0, 1] -> stylised RGB in [0, 1] of the same size.

    ``width`` scales every channel count (32/64/128 for ``width=32``, the paper's); a smaller
    width trains faster on a CPU. Sizes that are not multiples of 4 are padded (reflect) and
    cropped back, so the output always has the input's size.

    ``output="tanh"`` (the paper's "scaled tanh" output layer) maps the last conv's ``z`` (in
    [0, 1] units) to ``0.5 + 0.5 tanh(2 (z - 0.5))``: the identity at mid-grey, saturating at 0
    and 1, so the loss network never sees values outside the image range. ``"linear"`` leaves
    ``z`` unbounded, as pytorch/examples ``fast_neural_style`` does; with the offline VGG16 trunk
    that lets training match the Gram matrices with a zero-mean pattern far outside [0, 1].
    """

    def __init__(self, width: int = 32, blocks: int = 5, output: str = "tanh") -> None:
        super().__init__()
        if width < 1 or blocks < 0:
            raise ValueError(f"width must be >= 1 and blocks >= 0, got {width}, {blocks}")
        check_output(output)
        c1, c2, c3 = width, 2 * width, 4 * width
        self.width, self.blocks, self.output = width, blocks, output

        def norm(c: int) -> nn.Module:
            return nn.InstanceNorm2d(c, affine=True)

        self.down = nn.Sequential(
            ConvLayer(3, c1, 9), norm(c1), nn.ReLU(inplace=True),
            ConvLayer(c1, c2, 3, 2), norm(c2), nn.ReLU(inplace=True),
            ConvLayer(c2, c3, 3, 2), norm(c3), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.res = nn.Sequential(*(ResidualBlock(c3) for _ in range(blocks)))
        self.up = nn.Sequential(
            UpsampleConv(c3, c2, 3, 2), norm(c2), nn.ReLU(inplace=True),
            UpsampleConv(c2, c1, 3, 2), norm(c1), nn.ReLU(inplace=True),
            ConvLayer(c1, 3, 9),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
            x = nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
        y = self.up(self.res(self.down(x * 255.0))) / 255.0
        return output_layer(y, self.output)[..., :h, :w]


def channel_stats(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and standard deviation of ``(N, C, H, W)``: ``(N, C, 1, 1)``."""
    flat = x.flatten(2)
    mean = flat.mean(dim=2)[..., None, None]
    std = (flat.var(dim=2, unbiased=False) + eps).sqrt()[..., None, None]
    return mean, std


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``sigma(s) * (c - mu(c)) / sigma(c) + mu(s)`` per channel (Huang & Belongie, eq. 8)."""
    if content.shape[:2] != style.shape[:2]:
        raise ValueError(f"adain of {tuple(content.shape)} and {tuple(style.shape)}")
    cm, cs = channel_stats(content, eps)
    sm, ss = channel_stats(style, eps)
    return ss * (content - cm) / cs + sm


class AdainDecoder(nn.Module):
    """The encoder (VGG to relu4_1) mirrored: 512 channels at 1/8 size -> RGB in [0, 1].

    Nearest upsampling replaces each pooling, reflection padding every conv, no normalisation
    (Huang & Belongie's decoder). ``width`` divides the channel counts (1: 256/128/64 after the
    first conv, as published; 2 halves them) and ``channels`` is the encoder's (512 for VGG).
    ``output``: ``"tanh"`` bounds the image to [0, 1] (:func:`output_layer`; with the offline
    trunk an unbounded decoder drifts to dark, out-of-range images), ``"linear"`` as published.
    """

    def __init__(self, channels: int = 512, width: int = 1, output: str = "tanh") -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        c4, c3, c2, c1 = channels, 256 // width, 128 // width, 64 // width
        self.channels, self.width, self.output = channels, width, check_output(output)

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [ConvLayer(cin, cout, 3), nn.ReLU(inplace=True)]

        up = nn.Upsample(scale_factor=2, mode="nearest")
        self.body = nn.Sequential(
            *conv(c4, c3), up,
            *conv(c3, c3), *conv(c3, c3), *conv(c3, c3), *conv(c3, c2), up,
            *conv(c2, c2), *conv(c2, c1), up,
            *conv(c1, c1), ConvLayer(c1, 3, 3),
        )  # fmt: skip

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return output_layer(self.body(features), self.output)
