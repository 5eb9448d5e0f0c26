"""srkit: super-resolution toolkit with paper-exact evaluation.

The public API is re-exported lazily so that ``import srkit`` stays cheap for the CLI.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "load":  # srkit.load(path) -> SRModel, imported on first use
        from srkit.weights import load

        return load
    if name in ("upscale", "Upscaler"):  # srkit.upscale(image, model=...), srkit.Upscaler
        import srkit.infer

        return getattr(srkit.infer, name)
    if name == "retain_freed_memory":  # what `srkit` does at start-up, for library users
        from srkit.common.allocator import retain_freed_memory

        return retain_freed_memory
    raise AttributeError(f"module 'srkit' has no attribute {name!r}")
