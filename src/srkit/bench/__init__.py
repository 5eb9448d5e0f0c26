"""``srkit bench``: evaluate SR models exactly as papers do (see ``srkit.metrics``).

:mod:`srkit.bench.engine` is the one evaluation loop (``srkit bench``, ``srkit faces eval`` and
training validation); :mod:`srkit.bench.plugins` its plugin interface; :mod:`srkit.bench.runner`
the paper protocol on it (:func:`evaluate_model`).
"""

from srkit.bench.engine import Evaluation
from srkit.bench.plugins import DegradationStep, Metric, PairStep, PsnrSsim, ReadImages, Sample
from srkit.bench.protocol import ImageScore, matlab_bicubic_lr, super_resolve_uint8
from srkit.bench.records import Prepared, Result
from srkit.bench.runner import (
    DatasetResult,
    evaluate_model,
    evaluate_models,
    run_benchmark,
    score_image,
)

__all__ = [
    "DatasetResult",
    "DegradationStep",
    "Evaluation",
    "ImageScore",
    "Metric",
    "PairStep",
    "Prepared",
    "PsnrSsim",
    "ReadImages",
    "Result",
    "Sample",
    "evaluate_model",
    "evaluate_models",
    "matlab_bicubic_lr",
    "run_benchmark",
    "score_image",
    "super_resolve_uint8",
]
