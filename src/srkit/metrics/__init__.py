"""PSNR and SSIM exactly as super-resolution papers compute them.

The protocol (what ``srkit bench`` does):

1. HR is mod-cropped to a multiple of the scale; LR is MATLAB-bicubic of it, rounded to uint8.
2. The SR output is clamped and rounded to uint8.
3. Both are converted to the Y channel of BT.601 (MATLAB ``rgb2ycbcr``), ``scale`` pixels of
   border are removed, then PSNR (peak 255) and SSIM (11x11 Gaussian window, sigma 1.5,
   'valid' filtering, K1 = 0.01, K2 = 0.03) are computed per image and averaged.

Two conventions differ in step 3 and are both in use:

``modern`` (default)
    Y computed in float from the uint8 RGB (MATLAB ``rgb2ycbcr(im2double(img))``, as the
    EDSR/RCAN evaluation script and BasicSR do). Published figures of IMDN, A2N, RLFN and most
    post-2017 papers.
``legacy``
    Y computed by ``rgb2ycbcr`` on the uint8 image, i.e. rounded to uint8 (SRCNN/VDSR era). The
    classic bicubic rows (Set5 33.66 / 30.39 / 28.42 dB) use it; it reads 0.01-0.08 dB lower.
"""

from srkit.metrics.sr import (
    CONVENTIONS,
    crop_border,
    mod_crop,
    prepare_for_metric,
    psnr,
    psnr_ssim,
    ssim,
)

__all__ = [
    "CONVENTIONS",
    "crop_border",
    "mod_crop",
    "prepare_for_metric",
    "psnr",
    "psnr_ssim",
    "ssim",
]
