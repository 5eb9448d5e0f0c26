"""The machine's measured matmul peak (fp32, bf16, int8) and a model's convolution work.

``matmul_peak()`` times large square matrix products: fp32 and bf16 with ``torch.matmul``
(oneDNN), int8 with ``torch._int_mm`` when this PyTorch has it on CPU, else ONNX Runtime's
``MatMulInteger``. ``conv_macs(model, h, w)`` counts the multiply-accumulates of a network's
convolutions for one input, so ``2 * macs * images_per_second`` compares with the peak.
"""

from __future__ import annotations

import time

import torch
from torch import nn


def _best_rate(fn, flops: float, min_time: float) -> float:
    fn()
    best = 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        best = max(best, flops / (time.perf_counter() - t0))
    return best


def _int8_ort(n: int, min_time: float) -> float | None:
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    a = helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.INT8, [n, n])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])
    node = helper.make_node("MatMulInteger", ["a", "b"], ["y"])
    graph = helper.make_graph([node], "mm", [a, b], [y])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(
        onnx._serialize(proto) if hasattr(onnx, "_serialize") else proto.SerializeToString(),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
    rng = np.random.default_rng(0)
    feed = {
        "a": rng.integers(0, 255, (n, n), dtype=np.uint8),
        "b": rng.integers(-127, 127, (n, n), dtype=np.int8),
    }
    return _best_rate(lambda: session.run(None, feed), 2.0 * n**3, min_time)


def matmul_peak(n: int = 2048, min_time: float = 1.5) -> dict[str, float | str | None]:
    """Best observed GFLOP/s (GOP/s for int8) of ``n`` x ``n`` products, per precision."""
    flops = 2.0 * n**3
    out: dict[str, float | str | None] = {}
    with torch.inference_mode():
        a, b = torch.randn(n, n), torch.randn(n, n)
        out["fp32_gflops"] = round(_best_rate(lambda: a @ b, flops, min_time) / 1e9, 1)
        ab, bb = a.bfloat16(), b.bfloat16()
        out["bf16_gflops"] = round(_best_rate(lambda: ab @ bb, flops, min_time) / 1e9, 1)
        rate, how = None, None
        if hasattr(torch, "_int_mm"):
            ai = torch.randint(-127, 127, (n, n), dtype=torch.int8)
            bi = torch.randint(-127, 127, (n, n), dtype=torch.int8)
            try:
                rate, how = _best_rate(lambda: torch._int_mm(ai, bi), flops, min_time), "torch"
            except RuntimeError:
                rate = None
        ort_rate = _int8_ort(n, min_time)
        if ort_rate is not None and (rate is None or ort_rate > rate):
            rate, how = ort_rate, "onnxruntime"
        out["int8_gops"] = None if rate is None else round(rate / 1e9, 1)
        out["int8_via"] = how
    out["n"] = n
    out["threads"] = torch.get_num_threads()
    return out


def conv_macs(net: nn.Module, channels: int, height: int, width: int) -> int:
    """Multiply-accumulates of the convolutions (and linear layers) of one forward pass."""
    import copy

    total = 0

    def hook(module, _inputs, output) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * (module.in_channels // module.groups) * k
        elif isinstance(module, nn.ConvTranspose2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            inputs = _inputs[0]
            total += inputs.numel() * (module.out_channels // module.groups) * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    meta = copy.deepcopy(net).to("meta")
    handles = [m.register_forward_hook(hook) for m in meta.modules()]
    try:
        with torch.no_grad():
            meta(torch.empty(1, channels, height, width, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return total
