"""The explicit architecture registry: one ``ArchSpec`` per name, no import-time scanning."""

from __future__ import annotations

from typing import Any

from torch import nn

from srkit.archs.a2n import A2N
from srkit.archs.carn import CARNM
from srkit.archs.common import DIV2K_MEAN, RGB01, RGB255, Y01, ArchSpec, InputConvention, Reference
from srkit.archs.dbpn import DBPN
from srkit.archs.drcn import DRCN
from srkit.archs.edsr import EDSR
from srkit.archs.espcn import ESPCN
from srkit.archs.fsrcnn import FSRCNN
from srkit.archs.imdn import IMDN
from srkit.archs.lapsrn import LapSRN
from srkit.archs.repan import RepAN
from srkit.archs.rlfn import RLFN
from srkit.archs.rrdb import RRDBNet
from srkit.archs.srcnn import SRCNN
from srkit.archs.srdensenet import SRDenseNet
from srkit.archs.srresnet import SRResNet
from srkit.archs.vdsr import VDSR

EDSR_CONVENTION = InputConvention("rgb", 255.0, DIV2K_MEAN)
CARN_CONVENTION = InputConvention("rgb", 1.0, DIV2K_MEAN)

_SPECS = [
    ArchSpec(
        name="srcnn",
        cls=SRCNN,
        defaults={"f1": 9, "f2": 5, "f3": 5, "n1": 64, "n2": 32, "channels": 1},
        scales=(2, 3, 4),
        convention=Y01,
        reference=Reference(
            "Dong, Loy, He, Tang",
            "Image Super-Resolution Using Deep Convolutional Networks",
            "IEEE TPAMI",
            2016,
            "https://arxiv.org/abs/1501.00092",
        ),
        published_params={3: 57_184},
        params_counted="weights",
        params_source="SRCNN TPAMI paper, filter-size study: 9-5-5 has 57,184 parameters "
        "(9-1-5: 8,032; 9-3-5: 24,416), weights only",
        description="3-layer CNN on the bicubic-upscaled Y channel (9-5-5)",
    ),
    ArchSpec(
        name="fsrcnn",
        cls=FSRCNN,
        defaults={"d": 56, "s": 12, "m": 4, "channels": 1, "deconv_padding": 4},
        scales=(2, 3, 4),
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
    ArchSpec(
        name="espcn",
        cls=ESPCN,
        defaults={"n1": 64, "n2": 32, "channels": 1},
        scales=(2, 3, 4, 8),
        convention=Y01,
        reference=Reference(
            "Shi et al.",
            "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel "
            "Convolutional Neural Network",
            "CVPR",
            2016,
            "https://arxiv.org/abs/1609.05158",
        ),
        published_params={3: 22_624},
        params_counted="weights",
        params_source="ESPCN paper gives the layers (5x5x64, 3x3x32, 3x3x r^2) but no "
        "total; 22,624 weights at x3 is that configuration's count (no independent figure)",
        description="3-layer CNN in LR space with a sub-pixel (pixel-shuffle) output, tanh",
    ),
    ArchSpec(
        name="vdsr",
        cls=VDSR,
        defaults={"depth": 20, "features": 64, "channels": 1},
        scales=(2, 3, 4),
        convention=Y01,
        reference=Reference(
            "Kim, Lee, Lee",
            "Accurate Image Super-Resolution Using Very Deep Convolutional Networks",
            "CVPR",
            2016,
            "https://arxiv.org/abs/1511.04587",
        ),
        published_params={2: 665_000, 3: 665_000, 4: 665_000},
        params_source="665K, as listed for VDSR in the LapSRN / MS-LapSRN (Lai et al., CVPR 2017 "
        "/ TPAMI 2018) and DRRN (Tai et al., CVPR 2017) comparisons",
        description="20-layer residual CNN on the bicubic-upscaled Y channel",
    ),
    ArchSpec(
        name="drcn",
        cls=DRCN,
        defaults={"recursions": 16, "features": 256, "channels": 1},
        scales=(2, 3, 4),
        convention=Y01,
        reference=Reference(
            "Kim, Lee, Lee",
            "Deeply-Recursive Convolutional Network for Image Super-Resolution",
            "CVPR",
            2016,
            "https://arxiv.org/abs/1511.04491",
        ),
        published_params={2: 1_775_000, 3: 1_775_000, 4: 1_775_000},
        params_source="1,775K, as listed for DRCN in the DRRN (Tai et al., CVPR 2017) and "
        "MS-LapSRN (Lai et al., TPAMI 2018) comparisons",
        description="one conv recursed 16 times with recursive supervision and skip connection",
    ),
    ArchSpec(
        name="lapsrn",
        cls=LapSRN,
        defaults={"depth": 10, "features": 64, "channels": 1},
        scales=(2, 4, 8),
        convention=Y01,
        reference=Reference(
            "Lai, Huang, Ahuja, Yang",
            "Deep Laplacian Pyramid Networks for Fast and Accurate Super-Resolution",
            "CVPR",
            2017,
            "https://arxiv.org/abs/1704.03915",
        ),
        published_params={4: 812_000},
        params_source="812K for LapSRN (x4, depth 10), MS-LapSRN paper (Lai et al., TPAMI 2018) "
        "parameter comparison",
        description="progressive x2 Laplacian pyramid, feature + image branches per level",
    ),
    ArchSpec(
        name="srdensenet",
        cls=SRDenseNet,
        defaults={
            "blocks": 8,
            "layers": 8,
            "growth": 16,
            "features": 128,
            "bottleneck": 256,
            "channels": 1,
        },
        scales=(2, 4, 8),
        convention=Y01,
        reference=Reference(
            "Tong, Li, Liu, Gao",
            "Image Super-Resolution Using Dense Skip Connections",
            "ICCV",
            2017,
        ),
        published_params={4: 2_000_000},
        params_source="~2.0M, the figure given for SRDenseNet (x4) in later comparisons; the "
        "paper itself gives the layer configuration only",
        description="8 dense blocks (8 layers, growth 16) with dense skips, bottleneck, deconvs",
    ),
    ArchSpec(
        name="srresnet",
        cls=SRResNet,
        defaults={"blocks": 16, "features": 64, "batch_norm": True, "channels": 3},
        scales=(2, 3, 4, 8),
        convention=RGB01,
        reference=Reference(
            "Ledig et al.",
            "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
            "CVPR",
            2017,
            "https://arxiv.org/abs/1609.04802",
        ),
        published_params={4: 1_550_000},
        params_source="SRGAN generator (16 blocks, BN) x4: commonly cited as 1.5M; taken as "
        "1.55M (3 significant figures) for the 2% check; the paper prints no count",
        description="SRGAN generator: 16 residual blocks with BN, pixel-shuffle upsampling",
    ),
    ArchSpec(
        name="edsr_baseline",
        cls=EDSR,
        defaults={"blocks": 16, "features": 64, "res_scale": 1.0, "channels": 3},
        scales=(2, 3, 4),
        convention=EDSR_CONVENTION,
        reference=Reference(
            "Lim, Son, Kim, Nah, Lee",
            "Enhanced Deep Residual Networks for Single Image Super-Resolution",
            "CVPRW",
            2017,
            "https://arxiv.org/abs/1707.02921",
        ),
        published_params={2: 1_370_000, 3: 1_550_000, 4: 1_520_000},
        params_source="EDSR-PyTorch README model table (sanghyun-son/EDSR-PyTorch): "
        "EDSR_baseline x2 1.37M, x3 1.55M, x4 1.52M",
        description="EDSR baseline: 16 residual blocks, 64 features, no residual scaling",
    ),
    ArchSpec(
        name="edsr",
        cls=EDSR,
        defaults={"blocks": 32, "features": 256, "res_scale": 0.1, "channels": 3},
        scales=(2, 3, 4),
        convention=EDSR_CONVENTION,
        reference=Reference(
            "Lim, Son, Kim, Nah, Lee",
            "Enhanced Deep Residual Networks for Single Image Super-Resolution",
            "CVPRW",
            2017,
            "https://arxiv.org/abs/1707.02921",
        ),
        published_params={2: 40_700_000, 3: 43_700_000, 4: 43_100_000},
        params_source="EDSR-PyTorch README model table: EDSR x2 40.7M, x3 43.7M, x4 43.1M "
        "(paper: 43M)",
        description="EDSR: 32 residual blocks, 256 features, residual scaling 0.1",
    ),
    ArchSpec(
        name="dbpn",
        cls=DBPN,
        defaults={"stages": 7, "features": 64, "init_features": 256, "channels": 3},
        scales=(2, 4, 8),
        convention=RGB01,
        reference=Reference(
            "Haris, Shakhnarovich, Ukita",
            "Deep Back-Projection Networks For Super-Resolution",
            "CVPR",
            2018,
            "https://arxiv.org/abs/1803.02735",
        ),
        published_params={4: 10_400_000},
        params_source="D-DBPN x4 (T = 7): ~10.4M, the size commonly cited for it (not checked "
        "against the paper's own table here)",
        description="dense deep back-projection: 7 up / 6 down projection units",
    ),
    ArchSpec(
        name="rrdb",
        cls=RRDBNet,
        defaults={"blocks": 23, "features": 64, "growth": 32, "channels": 3},
        scales=(2, 4),
        convention=RGB01,
        reference=Reference(
            "Wang et al.",
            "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks",
            "ECCVW",
            2018,
            "https://arxiv.org/abs/1809.00219",
        ),
        published_params={4: 16_697_987},
        params_source="RRDBNet (ESRGAN / RRDB_PSNR x4, 23 blocks): 16,697,987 parameters as "
        "reported for the released ESRGAN generator (16.7M)",
        description="ESRGAN generator: 23 residual-in-residual dense blocks",
    ),
    ArchSpec(
        name="a2n",
        cls=A2N,
        defaults={"blocks": 16, "features": 40, "up_features": 24, "channels": 3},
        scales=(2, 3, 4),
        convention=RGB255,
        reference=Reference(
            "Chen, Gu, Zhang",
            "Attention in Attention Network for Image Super-Resolution",
            "arXiv:2104.09497",
            2021,
            "https://arxiv.org/abs/2104.09497",
        ),
        published_params={2: 1_036_000, 3: 1_036_000, 4: 1_047_000},
        params_source="A2N paper: 1.04M (x2/x3 1,036K; x4 adds a second upsampling stage)",
        description="attention-in-attention blocks with attention dropout, NN upsampling + PA",
    ),
    ArchSpec(
        name="imdn",
        cls=IMDN,
        defaults={"blocks": 6, "features": 64, "channels": 3},
        scales=(2, 3, 4),
        convention=RGB01,
        reference=Reference(
            "Hui, Gao, Yang, Wang",
            "Lightweight Image Super-Resolution with Information Multi-distillation Network",
            "ACM MM",
            2019,
            "https://arxiv.org/abs/1909.11856",
        ),
        published_params={2: 694_000, 3: 703_000, 4: 715_000},
        params_source="IMDN paper, comparison with lightweight models: "
        "694K / 703K / 715K for x2 / x3 / x4",
        description="6 information multi-distillation blocks with contrast-aware attention",
    ),
    ArchSpec(
        name="rlfn",
        cls=RLFN,
        defaults={"blocks": 6, "features": 52, "esa_channels": 16, "channels": 3},
        scales=(2, 3, 4),
        convention=RGB255,
        reference=Reference(
            "Kong, Li, Liu, Wang, Wang, Shi",
            "Residual Local Feature Network for Efficient Super-Resolution",
            "CVPRW",
            2022,
            "https://arxiv.org/abs/2205.07514",
        ),
        published_params={2: 527_000, 4: 543_000},
        params_source="RLFN paper, comparison table: RLFN 527K (x2), 543K (x4); the released "
        "rlfn_x2.pth / rlfn_x4.pth hold 526,856 / 543,740",
        description="6 residual local feature blocks with enhanced spatial attention (52 ch)",
    ),
    ArchSpec(
        name="rlfn_s",
        cls=RLFN,
        defaults={"blocks": 6, "features": 48, "esa_channels": 16, "channels": 3},
        scales=(2, 3, 4),
        convention=RGB255,
        reference=Reference(
            "Kong, Li, Liu, Wang, Wang, Shi",
            "Residual Local Feature Network for Efficient Super-Resolution",
            "CVPRW",
            2022,
            "https://arxiv.org/abs/2205.07514",
        ),
        published_params={2: 454_620, 4: 470_208},
        params_source="tensor count of the authors' released RLFN-S checkpoints "
        "(bytedance/RLFN model_zoo/rlfn_s_x2.pth, rlfn_s_x4.pth); no per-scale figure found "
        "in the paper",
        description="RLFN-S: the 48-channel RLFN",
    ),
    ArchSpec(
        name="carn_m",
        cls=CARNM,
        defaults={"features": 64, "groups": 4, "multi_scale": True, "channels": 3},
        scales=(2, 3, 4),
        convention=CARN_CONVENTION,
        reference=Reference(
            "Ahn, Kang, Sohn",
            "Fast, Accurate, and Lightweight Super-Resolution with Cascading Residual Network",
            "ECCV",
            2018,
            "https://arxiv.org/abs/1803.08664",
        ),
        published_params={2: 412_000, 3: 412_000, 4: 412_000},
        params_source="CARN paper, model comparison: CARN-M 412K (one multi-scale model)",
        description="mobile CARN: shared efficient residual blocks, group conv 4, multi-scale",
    ),
    ArchSpec(
        name="repan",
        cls=RepAN,
        defaults={"features": 48, "blocks": 6, "channels": 3, "fused": False},
        scales=(2, 3, 4),
        convention=RGB01,
        reference=Reference(
            "srkit",
            "RepAN: re-parameterised self-gated attention network (srkit's flagship)",
            "srkit",
            2026,
        ),
        published_params={2: 281_388, 3: 287_883, 4: 296_976},
        params_source="srkit's own design (src/srkit/archs/repan.py), counted in the fused "
        "inference form it ships in; training adds zero-initialised 1x1 branches (+11%)",
        paper_options={"fused": True},
        description="srkit's flagship: 6 gated residual blocks of re-parameterisable 3x3 "
        "convolutions (48 ch), fused to plain convolutions for inference",
    ),
]

ARCHS: dict[str, ArchSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> ArchSpec:
    key = name.lower().replace("-", "_")
    try:
        return ARCHS[key]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(ARCHS)}") from None


def build(name: str, scale: int | None = None, **options: Any) -> nn.Module:
    """Build architecture ``name`` at ``scale`` (default: the first scale with a published count).

    Unknown options and unsupported scales raise with the accepted values named.
    """
    spec = get_spec(name)
    if scale is None:
        scale = next(iter(spec.published_params), spec.scales[0])
    if scale not in spec.scales:
        raise ValueError(f"{spec.name} supports scales {spec.scales}, got {scale}")
    return spec.cls(scale=scale, **spec.options(**options))


def count_params(model: nn.Module, counted: str = "all") -> int:
    """Parameters of ``model``; ``counted="weights"`` counts only conv/linear weights."""
    if counted == "all":
        return sum(p.numel() for p in model.parameters())
    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, kinds))
