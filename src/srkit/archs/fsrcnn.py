"""FSRCNN: Dong, Loy, Tang, "Accelerating the Super-Resolution Convolutional Neural Network",
ECCV 2016 (arXiv:1608.00367).

Works on the LR Y channel: feature extraction Conv(5, d), shrinking Conv(1, s), m mapping layers
Conv(3, s), expanding Conv(1, d), each followed by a PReLU, then a 9 x 9 deconvolution with
stride ``scale``. FSRCNN(56, 12, 4) has 12,464 weights (the paper's complexity formula
``d(25 + s + 81) + s(d + 9 m s)``; biases and PReLU slopes not counted).

``deconv_padding`` places the deconvolution's taps. MATLAB's bicubic puts LR pixel ``i`` at HR
position ``s*i + (s-1)/2``; the kernel's centre tap lands on ``s*i + 4 - deconv_padding``. The
default 4 (what every shipped fsrcnn uses) puts it ``(s-1)/2`` pixels early (1 px at x3,
1.5 px at x4), so the 9 taps reach further on one side than the other; 3 centres it at x3 and
halves the offset at x4, as the authors' x3 Caffe model does. Weights trained with one padding
are not right for another (see ``shift_deconv_taps``).
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs.common import Y01, ArchSpec, Reference, check_scale, conv

SCALES = (2, 3, 4)
DECONV_KERNEL = 9


def deconv_output_padding(scale: int, padding: int) -> int:
    """The output padding that makes the deconvolution's output exactly ``scale`` times its
    input: (H - 1) * scale - 2 * padding + kernel + output_padding = H * scale."""
    return scale + 2 * padding - DECONV_KERNEL


class FSRCNN(nn.Module):
    def __init__(
        self,
        scale: int = 3,
        d: int = 56,
        s: int = 12,
        m: int = 4,
        channels: int = 1,
        deconv_padding: int = 4,
    ) -> None:
        super().__init__()
        check_scale("fsrcnn", scale, SCALES)
        output_padding = deconv_output_padding(scale, deconv_padding)
        if not 0 <= output_padding < scale:
            allowed = [
                p for p in range(DECONV_KERNEL) if 0 <= deconv_output_padding(scale, p) < scale
            ]
            raise ValueError(
                f"fsrcnn: deconv_padding={deconv_padding} cannot give an x{scale} output of "
                f"exactly {scale}x the input; use one of {allowed}"
            )
        self.scale = scale
        layers: list[nn.Module] = [conv(channels, d, 5), nn.PReLU(d), conv(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [conv(s, s, 3), nn.PReLU(s)]
        layers += [conv(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(
            d,
            channels,
            DECONV_KERNEL,
            stride=scale,
            padding=deconv_padding,
            output_padding=output_padding,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.body(x))


def shift_deconv_taps(state: dict[str, torch.Tensor], by: int) -> dict[str, torch.Tensor]:
    """Re-place FSRCNN weights for ``deconv_padding`` lowered by ``by``: every output then moves
    ``by`` pixels, so the taps move back by as much. The ``by`` rows and columns that fall off
    the kernel are lost and the new ones start at zero, so the result needs a short fine-tune."""
    if by < 0:
        raise ValueError("shift_deconv_taps: by must be >= 0")
    out = dict(state)
    w = state["deconv.weight"]
    shifted = torch.zeros_like(w)
    size = w.shape[-1]
    shifted[..., : size - by, : size - by] = w[..., by:, by:]
    out["deconv.weight"] = shifted
    return out


SPECS = (
    ArchSpec(
        name="fsrcnn",
        cls=FSRCNN,
        defaults={"d": 56, "s": 12, "m": 4, "channels": 1, "deconv_padding": 4},
        scales=SCALES,
        convention=Y01,
        reference=Reference(
            "Dong, Loy, Tang",
            "Accelerating the Super-Resolution Convolutional Neural Network",
            "ECCV",
            2016,
            "https://arxiv.org/abs/1608.00367",
        ),
        published_params={3: 12_464},
        params_counted="weights",
        params_source="FSRCNN paper, complexity analysis: FSRCNN(56,12,4) has 12,464 parameters "
        "(weights only, biases and PReLU slopes excluded)",
        description="hourglass CNN in LR space with a deconvolution output (d=56, s=12, m=4)",
    ),
)
