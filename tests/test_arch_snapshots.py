"""Numeric snapshots of every registered architecture, and its exact parameter count per scale.

For each arch: ``torch.manual_seed(0)``, build it (the paper configuration where that runs in a
fraction of a second on a CPU, a smaller configuration of the same structure where it is heavy),
add seeded noise to every parameter (so zero-initialised branches take part), run one fixed
input, and compare the output's shape, statistics and a handful of values with the numbers
recorded in ``tests/snapshots/archs.json`` (relative tolerance 1e-4, absolute 1e-4 x the
recorded standard deviation). The same file records ``count_params`` of the paper configuration
at every scale, checked exactly. Nothing here needs ``../shared``.

A change to an architecture's forward pass, initialisation or size fails here. When the change
is intended, record the new numbers and review the diff of the JSON file::

    SRKIT_UPDATE_SNAPSHOTS=1 python -m pytest -q -p no:xdist tests/test_arch_snapshots.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from srkit.archs import ARCHS, build, count_params, get_spec

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots" / "archs.json"
UPDATE = os.environ.get("SRKIT_UPDATE_SNAPSHOTS") == "1"
RTOL = 1e-4
INPUT_HW = (16, 18)  # non-square, and at least RLFN's 15 x 15
N_VALUES = 8

# Build options per arch: {} is the paper configuration; the heavy ones keep their structure
# (block types, attention, upsamplers) at a smaller width/depth.
OPTIONS: dict[str, dict[str, Any]] = {
    "srcnn": {},
    "fsrcnn": {},
    "espcn": {},
    "vdsr": {},
    "drcn": {"recursions": 4, "features": 32},
    "lapsrn": {},
    "srdensenet": {"blocks": 3, "layers": 4, "growth": 8, "features": 32, "bottleneck": 64},
    "srresnet": {},
    "srgan_leftthomas": {},
    "edsr_baseline": {},
    "edsr": {"blocks": 4, "features": 32},  # res_scale 0.1 as the paper's EDSR
    "dbpn": {"stages": 3, "features": 16, "init_features": 32},
    "rrdb": {"blocks": 2, "features": 16, "growth": 8},
    "a2n": {},
    "imdn": {},
    "rlfn": {},
    "rlfn_s": {},
    "carn_m": {},
    "repan": {},
    "repan_pair": {"mix": 0.3},
    "repan_face": {},
    "pfsrnet": {"width": 32},
    "waveletsrnet": {"features": 8, "wavelet_features": 4, "res_blocks": 1},
    "l2h": {},
}


def _default_scale(name: str) -> int:
    spec = get_spec(name)
    return next(iter(spec.published_params), spec.scales[0])


def compute_snapshot(name: str) -> dict[str, Any]:
    """The numbers recorded for ``name`` (see the module docstring)."""
    spec = get_spec(name)
    scale = _default_scale(name)
    options = OPTIONS[name]
    torch.manual_seed(0)
    net = build(name, scale=scale, **options).eval()
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, p in sorted(net.named_parameters()):
            p.add_(torch.randn(p.shape, generator=noise) * 0.01)
    c = spec.convention.in_channels
    x = torch.rand(1, c, *INPUT_HW, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = net(x * spec.convention.value_range).double()
    flat = y.flatten()
    picks = torch.linspace(0, flat.numel() - 1, N_VALUES).round().long()
    with torch.device("meta"):
        paper = {
            str(s): count_params(build(name, scale=s, **spec.paper_options)) for s in spec.scales
        }
    return {
        "scale": scale,
        "options": options,
        "input_shape": list(x.shape),
        "params": count_params(net),
        "output_shape": list(y.shape),
        "mean": float(y.mean()),
        "std": float(y.std()),
        "min": float(y.min()),
        "max": float(y.max()),
        "values": {str(int(i)): float(flat[i]) for i in picks},
        "paper_params": paper,
    }


def _recorded() -> dict[str, Any]:
    return json.loads(SNAPSHOTS.read_text()) if SNAPSHOTS.is_file() else {}


def _record(name: str, entry: dict[str, Any] | None) -> None:
    data = _recorded()
    if entry is None:
        data.pop(name, None)
    else:
        data[name] = entry
    SNAPSHOTS.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(dict(sorted(data.items())), indent=1)
    inline = lambda m: " ".join(m.group(0).split()).replace("[ ", "[").replace(" ]", "]")  # noqa: E731
    text = re.sub(r"\[[^\[\]{}]*\]", inline, text)  # shapes on one line
    SNAPSHOTS.write_text(text + "\n")


def _close(got: float, want: float, scale: float) -> bool:
    return abs(got - want) <= RTOL * abs(want) + RTOL * scale


def test_every_registered_arch_has_snapshot_options() -> None:
    assert set(OPTIONS) == set(ARCHS)


@pytest.mark.parametrize("name", list(ARCHS))
def test_arch_output_matches_its_snapshot(name: str) -> None:
    got = compute_snapshot(name)
    if UPDATE:
        _record(name, got)
        pytest.skip(f"recorded {name} in {SNAPSHOTS}")
    want = _recorded().get(name)
    assert want is not None, (
        f"no snapshot for {name}: record it with SRKIT_UPDATE_SNAPSHOTS=1 (see this module)"
    )
    for key in ("scale", "options", "input_shape", "output_shape"):
        assert got[key] == want[key], f"{name}: {key} {got[key]} != recorded {want[key]}"
    assert got["params"] == want["params"]
    scale = want["std"]
    assert got["max"] - got["min"] > 100 * RTOL * scale, f"{name}: a constant output checks little"
    for key in ("mean", "std", "min", "max"):
        assert _close(got[key], want[key], scale), f"{name}: {key} {got[key]} vs {want[key]}"
    assert got["values"].keys() == want["values"].keys()
    for index, value in want["values"].items():
        assert _close(got["values"][index], value, scale), (
            f"{name}: output[{index}] = {got['values'][index]} vs recorded {value}"
        )


@pytest.mark.parametrize("name", list(ARCHS))
def test_paper_configuration_param_count_at_every_scale(name: str) -> None:
    """Exact parameter counts (every scale), beside the published-figure check in test_archs."""
    spec = get_spec(name)
    want = _recorded().get(name, {}).get("paper_params")
    if UPDATE:
        pytest.skip("recorded by test_arch_output_matches_its_snapshot")
    assert want is not None, f"no recorded parameter counts for {name}"
    assert sorted(want, key=int) == [str(s) for s in spec.scales]
    with torch.device("meta"):
        for scale in spec.scales:
            net = build(name, scale=scale, **spec.paper_options)
            assert count_params(net) == want[str(scale)], f"{name} x{scale}"


def test_snapshot_file_holds_only_registered_archs() -> None:
    stale = set(_recorded()) - set(ARCHS)
    if UPDATE:
        for name in stale:
            _record(name, None)
        pytest.skip(f"removed {sorted(stale)}" if stale else "nothing stale")
    assert not stale, f"snapshots of unregistered archs: {sorted(stale)}"
