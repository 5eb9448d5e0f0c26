"""``srkit bench``: evaluate SR models exactly as papers do (see ``srkit.metrics``)."""

from srkit.bench.protocol import ImageScore, matlab_bicubic_lr, score_image, super_resolve_uint8
from srkit.bench.runner import DatasetResult, evaluate_model, evaluate_models, run_benchmark

__all__ = [
    "DatasetResult",
    "ImageScore",
    "evaluate_model",
    "evaluate_models",
    "matlab_bicubic_lr",
    "run_benchmark",
    "score_image",
    "super_resolve_uint8",
]
