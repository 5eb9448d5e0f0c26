"""Fuzz srkit's weight-file reader (``srkit.weights.load``): safetensors, manifests, .pth, .mat.

The first input byte picks the kind (and the scale asked for); the rest is

* ``safetensors``: a whole ``.safetensors`` file (an official-style one, no manifest);
* ``header``: a safetensors header (JSON) and its data, split at the first ``\\0\\0``; the driver
  writes the 8-byte length, so the fuzzer works on what the header says (dtypes, shapes, offsets);
* ``manifest``: an srkit ``.json`` manifest beside a valid tiny ESPCN ``.safetensors``; the text
  ``@SHA@`` is replaced by that file's sha256, so manifests get past the checksum;
* ``pth``: a ``.pth`` (zip or legacy pickle, read with ``torch.load(weights_only=True)``);
* ``mat``: a MatConvNet ``.mat``.

Seeds: tiny valid files of each kind (ESPCN, IMDN, EDSR, RLFN checkpoints). Clean errors:
``WeightsError``. Coverage: srkit's code.

    python benchmarks/fuzz_weights.py --seconds 180
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import sys
from pathlib import Path

import _fuzz

KINDS = ("safetensors", "header", "manifest", "pth", "mat")
SCALES = (None, 2, 3, 4)


def _espcn():
    import torch

    from srkit.archs import build

    torch.manual_seed(0)
    return build("espcn", scale=2, n1=4, n2=2)


def make_target():
    import torch
    from safetensors.torch import save as save_bytes

    from srkit.weights import WeightsError, load

    weights = save_bytes({k: v.contiguous() for k, v in _espcn().state_dict().items()})
    digest = hashlib.sha256(weights).hexdigest().encode()

    def target(data: bytes, folder: Path) -> None:
        if not data:
            return
        kind, scale, body = KINDS[data[0] % len(KINDS)], SCALES[(data[0] >> 4) % 4], data[1:]
        if kind == "safetensors":
            path = folder / "model_x2.safetensors"
            path.write_bytes(body)
        elif kind == "header":
            header, _, tensors = body.partition(b"\0\0")
            path = folder / "model_x2.safetensors"
            path.write_bytes(struct.pack("<Q", len(header)) + header + tensors)
        elif kind == "manifest":
            (folder / "tiny.safetensors").write_bytes(weights)
            path = folder / "tiny.json"
            path.write_bytes(body.replace(b"@SHA@", digest))
        elif kind == "pth":
            path = folder / "model_x2.pth"
            path.write_bytes(body)
        else:
            path = folder / "LapSRN_x2.mat"
            path.write_bytes(body)
        model = load(path, scale=scale)
        with torch.no_grad():
            model(torch.rand(1, 3, 16, 15))  # RLFN's attention needs 15 x 15

    return target, (WeightsError,)


def seeds() -> list[bytes]:
    import numpy as np
    import scipy.io
    import torch
    from safetensors.torch import save as save_bytes

    from srkit.archs import build

    out: list[bytes] = []
    espcn = {k: v.contiguous() for k, v in _espcn().state_dict().items()}
    torch.manual_seed(0)
    imdn = build("imdn", scale=2, blocks=1, features=16).state_dict()
    imdn = {k.replace("blocks.0.", "IMDB1.").replace("fuse.0.", "c.0."): v for k, v in imdn.items()}
    imdn = {k.replace("lr_conv.", "LR_conv."): v.contiguous() for k, v in imdn.items()}
    edsr = build("edsr_baseline", scale=2, blocks=1, features=8).state_dict()
    rlfn = build("rlfn_s", scale=2, blocks=1, features=8, esa_channels=4).state_dict()
    rlfn = {k.replace("blocks.0.", "block_1."): v.contiguous() for k, v in rlfn.items()}
    for state in (espcn, imdn):
        out.append(bytes([KINDS.index("safetensors")]) + save_bytes(state))
    raw = save_bytes({"w": torch.zeros(2, 3)})
    (length,) = struct.unpack("<Q", raw[:8])
    out.append(bytes([KINDS.index("header")]) + raw[8 : 8 + length] + b"\0\0" + raw[8 + length :])
    manifest = {
        "format": "srkit-weights",
        "version": 1,
        "name": "tiny",
        "arch": "espcn",
        "options": {"n1": 4, "n2": 2, "channels": 1},
        "scale": 2,
        "params": sum(v.numel() for v in espcn.values()),
        "input_convention": {"channels": "y", "value_range": 1.0, "mean": None},
        "weights": "tiny.safetensors",
        "sha256": "@SHA@",
    }
    out.append(bytes([KINDS.index("manifest")]) + json.dumps(manifest).encode())
    out.append(bytes([KINDS.index("manifest") | 0x20]) + json.dumps(manifest, indent=1).encode())
    for state in (imdn, edsr, rlfn, {"params": imdn}):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        out.append(bytes([KINDS.index("pth")]) + buffer.getvalue())
    buffer = io.BytesIO()
    torch.save(edsr, buffer, _use_new_zipfile_serialization=False)  # the legacy pickle format
    out.append(bytes([KINDS.index("pth")]) + buffer.getvalue())
    buffer = io.BytesIO()
    params = np.array(
        [("input_conv_f", np.zeros((3, 3, 1, 4), np.float32)), ("level1_conv1_f", np.zeros(4))],
        dtype=[("name", object), ("value", object)],
    )
    scipy.io.savemat(buffer, {"net": {"params": params, "layers": np.zeros(0)}})
    out.append(bytes([KINDS.index("mat")]) + buffer.getvalue())
    return out


if __name__ == "__main__":
    sys.exit(_fuzz.main("fuzz_weights", make_target, seeds, description=__doc__, max_len=32768))
