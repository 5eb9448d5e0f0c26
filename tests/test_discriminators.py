"""GAN discriminators: output shapes, exact parameter counts from the papers' layer lists, numeric
snapshots (the mechanism of test_arch_snapshots.py, in ``tests/snapshots/discriminators.json``),
and the table kept apart from the SR registry.

Record new snapshot numbers after an intended change with::

    SRKIT_UPDATE_SNAPSHOTS=1 python -m pytest -q -p no:xdist tests/test_discriminators.py
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from srkit.archs import ARCHS, count_params
from srkit.archs.discriminators import (
    DISCRIMINATORS,
    MODULES,
    build_discriminator,
    get_discriminator_spec,
)

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots" / "discriminators.json"
UPDATE = os.environ.get("SRKIT_UPDATE_SNAPSHOTS") == "1"
RTOL = 1e-4

# small configurations of the same structure, for the snapshots (CPU, well under a second)
SMALL: dict[str, dict[str, Any]] = {
    "srgan_vgg": {"features": 8, "dense": 32, "input_size": 32},
    "unet_sn": {"features": 8},
    "patchgan": {"features": 8},
    "pfsrnet_d": {"width": 32, "dense": 64},
}


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def test_srgan_discriminator_count_follows_the_papers_layer_list():
    # Ledig et al. figure 4: k3n64s1, then k3n{64,128,128,256,256,512,512}s{2,1,2,1,2,1,2} with
    # BN (no conv bias before BN), dense 1024, dense 1, on 128 x 128 inputs (8 x 8 x 512 at the end)
    widths = [64, 64, 128, 128, 256, 256, 512, 512]
    convs = conv(3, 64, 3) + sum(conv(a, b, 3, bias=False) for a, b in itertools.pairwise(widths))
    norms = sum(2 * w for w in widths[1:])
    dense = (8 * 8 * 512 + 1) * 1024 + (1024 + 1)
    assert (convs, norms, dense) == (4_683_520, 3_712, 33_556_481)
    net = build_discriminator("srgan_vgg")
    assert count_params(net) == convs + norms + dense == 38_243_713
    assert get_discriminator_spec("srgan_vgg").published_params == count_params(net)
    assert net(torch.rand(2, 3, 128, 128)).shape == (2, 1)


def test_unet_discriminator_count_and_the_authors_parameter_names():
    f = 64
    expected = (
        conv(3, f, 3)
        + conv(f, 2 * f, 4, False) + conv(2 * f, 4 * f, 4, False) + conv(4 * f, 8 * f, 4, False)
        + conv(8 * f, 4 * f, 3, False) + conv(4 * f, 2 * f, 3, False) + conv(2 * f, f, 3, False)
        + 2 * conv(f, f, 3, False)
        + conv(f, 1, 3)
    )  # fmt: skip
    net = build_discriminator("unet_sn")
    assert count_params(net) == expected == 4_376_897
    keys = set(net.state_dict())
    # spectral norm as torch.nn.utils.spectral_norm stores it, like Real-ESRGAN's released netD
    assert {"conv0.weight", "conv1.weight_orig", "conv1.weight_u", "conv9.bias"} <= keys
    assert net(torch.rand(1, 3, 48, 40)).shape == (1, 1, 48, 40)  # one logit per pixel
    with pytest.raises(ValueError, match="multiples of 8, got 30 x 40"):
        net(torch.rand(1, 3, 30, 40))


def test_patchgan_count_and_its_70_pixel_receptive_field():
    expected = (
        conv(3, 64, 4) + conv(64, 128, 4, False) + 256 + conv(128, 256, 4, False) + 512
        + conv(256, 512, 4, False) + 1024 + conv(512, 1, 4)
    )  # fmt: skip
    net = build_discriminator("patchgan")
    assert count_params(net) == expected == 2_765_633
    # pix2pix's own D takes 6 channels (input and output): its code prints 2.769M
    assert count_params(build_discriminator("patchgan", channels=6)) == 2_768_705
    assert net(torch.rand(1, 3, 256, 256)).shape == (1, 1, 30, 30)  # pix2pix's 30 x 30 map
    # receptive field: logit (i, j) sees input rows and columns 8i - 23 ... 8i + 46 (70 pixels;
    # the five 1-pixel paddings shift the window by 1 + 2 + 4 + 8 + 8 = 23)
    net = build_discriminator("patchgan", features=4).eval()
    x = torch.rand(1, 3, 140, 140, requires_grad=True)
    net(x)[0, 0, 4, 5].backward()
    rows = torch.nonzero(x.grad.abs().sum((0, 1, 3))).flatten()
    cols = torch.nonzero(x.grad.abs().sum((0, 1, 2))).flatten()
    assert (int(rows.min()), int(rows.max())) == (8 * 4 - 23, 8 * 4 + 46)
    assert (int(cols.min()), int(cols.max())) == (8 * 5 - 23, 8 * 5 + 46)


def test_srgan_discriminator_refuses_other_sizes_and_options():
    net = build_discriminator("srgan_vgg", features=8, dense=16, input_size=32)
    assert net(torch.rand(3, 3, 32, 32)).shape == (3, 1)
    with pytest.raises(ValueError, match="takes 32 x 32 inputs, got 64 x 64"):
        net(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="multiple of 16"):
        build_discriminator("srgan_vgg", input_size=40)
    with pytest.raises(TypeError, match="unknown option\\(s\\) width; known: channels"):
        build_discriminator("patchgan", width=3)
    with pytest.raises(KeyError, match="unknown discriminator 'vgg'; known: srgan_vgg"):
        build_discriminator("vgg")


def test_discriminators_have_their_own_table():
    assert list(DISCRIMINATORS) == ["srgan_vgg", "unet_sn", "patchgan", "pfsrnet_d"] == list(SMALL)
    assert not set(DISCRIMINATORS) & set(ARCHS)  # never listed as upscalers
    for module in MODULES:
        for spec in module.SPECS:
            assert spec.cls.__module__ == module.__name__, spec.name
            assert spec.reference.title and spec.description and spec.params_source
            net = spec.cls(**spec.defaults)
            assert count_params(net) == spec.published_params, spec.name


def compute_snapshot(name: str) -> dict[str, Any]:
    torch.manual_seed(0)
    net = build_discriminator(name, **SMALL[name]).eval()
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, p in sorted(net.named_parameters()):
            p.add_(torch.randn(p.shape, generator=noise) * 0.01)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = net(x).double()
    flat = y.flatten()
    picks = torch.linspace(0, flat.numel() - 1, min(8, flat.numel())).round().long()
    return {
        "options": SMALL[name],
        "params": count_params(net),
        "output_shape": list(y.shape),
        "mean": float(y.mean()),
        "std": float(y.std()),
        "values": {str(int(i)): float(flat[i]) for i in picks},
    }


def _recorded() -> dict[str, Any]:
    return json.loads(SNAPSHOTS.read_text()) if SNAPSHOTS.is_file() else {}


@pytest.mark.parametrize("name", list(SMALL))
def test_discriminator_output_matches_its_snapshot(name: str) -> None:
    got = compute_snapshot(name)
    if UPDATE:
        data = {**_recorded(), name: got}
        SNAPSHOTS.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
        pytest.skip(f"recorded {name} in {SNAPSHOTS}")
    want = _recorded().get(name)
    assert want is not None, f"no snapshot for {name}: record it with SRKIT_UPDATE_SNAPSHOTS=1"
    assert got["options"] == want["options"] and got["params"] == want["params"]
    assert got["output_shape"] == want["output_shape"]
    scale = want["std"]
    assert got["std"] > 100 * RTOL * scale, f"{name}: a constant output checks little"

    def close(a: float, b: float) -> bool:
        return abs(a - b) <= RTOL * abs(b) + RTOL * scale

    assert close(got["mean"], want["mean"]) and close(got["std"], want["std"])
    assert got["values"].keys() == want["values"].keys()
    for index, value in want["values"].items():
        assert close(got["values"][index], value), (name, index, got["values"][index], value)
