"""The machine's measured matmul peak (fp32, bf16, int8).

``matmul_peak()`` times large square matrix products: fp32 and bf16 with ``torch.matmul``
(oneDNN); int8 as the best of ``torch._int_mm``, ONNX Runtime's ``MatMulInteger`` and an
OpenVINO QDQ MatMul. With :func:`srkit.archs.catalog.count_macs` (a network's multiply-accumulates
for one input), ``2 * macs * images_per_second`` compares with the peak.
"""

from __future__ import annotations

import time

import torch


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


def _int8_openvino(n: int, min_time: float) -> float | None:
    """An int8 x int8 matmul in OpenVINO (QDQ pairs around a MatMul: VNNI/AMX brgemm)."""
    try:
        import numpy as np
        import openvino as ov
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 127, (n, n), dtype=np.int8)
    inits = [
        numpy_helper.from_array(weight, "w_q"),
        numpy_helper.from_array(np.array(0.01, dtype=np.float32), "s"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "z"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "zw"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["a", "s", "z"], ["a_q"]),
        helper.make_node("DequantizeLinear", ["a_q", "s", "z"], ["a_dq"]),
        helper.make_node("DequantizeLinear", ["w_q", "s", "zw"], ["w_dq"]),
        helper.make_node("MatMul", ["a_dq", "w_dq"], ["y"]),
    ]
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])
    graph = helper.make_graph(nodes, "mm", [a], [y], initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mm.onnx"
        path.write_bytes(proto.SerializeToString())
        config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY"}
        compiled = ov.Core().compile_model(ov.Core().read_model(str(path)), "CPU", config)
    feed = rng.standard_normal((n, n)).astype(np.float32)
    request = compiled.create_infer_request()
    return _best_rate(lambda: request.infer({0: feed}), 2.0 * n**3, min_time)


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
        for name, measure in (("onnxruntime", _int8_ort), ("openvino", _int8_openvino)):
            try:
                other = measure(n, min_time)
            except Exception:  # noqa: BLE001 - a missing or failing runtime is just skipped
                other = None
            if other is not None and (rate is None or other > rate):
                rate, how = other, name
        out["int8_gops"] = None if rate is None else round(rate / 1e9, 1)
        out["int8_via"] = how
    out["n"] = n
    out["threads"] = torch.get_num_threads()
    return out
