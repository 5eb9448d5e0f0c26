"""Pretrained feature networks for perceptual losses and metrics, loaded offline.

A :class:`FeatureNet` takes RGB images in ``[0, 1]``, applies the input normalisation its
weights were trained with, and returns the activations of named layers (``relu2_2``,
``conv5_4``, ...). Where the weights come from (:func:`feature_network`):

``stlpips_vgg16`` / ``stlpips_alex``
    The VGG16 and AlexNet trunks of ST-LPIPS (Ghildyal & Liu, "Shift-tolerant Perceptual
    Similarity Metric", ECCV 2022), read from the weight files inside the installed
    ``stlpips-pytorch`` package (``pip install srkit[perceptual]``) without importing it. They
    are trained for perceptual similarity, not ImageNet classification, and their pooling is
    anti-aliased (max-pool at stride 1, then a [1, 2, 1] blur at stride 2), so features differ
    from an ImageNet VGG's (see docs/perceptual.md).
``vgg19:PATH`` / ``vgg16:PATH``
    A torchvision ImageNet file (``vgg19-dcbb9e9d.pth``, ``vgg16-397923af.pth``) the user gives,
    the feature network of SRGAN and ESRGAN.
``alexnet:PATH``
    torchvision's ImageNet AlexNet (``alexnet-owt-7be5be79.pth``), the trunk of standard LPIPS.
"""

from srkit.features.networks import (
    FEATURE_NETWORKS,
    FeatureNet,
    Layer,
    feature_network,
    imagenet_alexnet,
    imagenet_vgg,
    package_file,
    stlpips_linear_weights,
    stlpips_trunk,
    unit_features,
)

__all__ = [
    "FEATURE_NETWORKS",
    "FeatureNet",
    "Layer",
    "feature_network",
    "imagenet_alexnet",
    "imagenet_vgg",
    "package_file",
    "stlpips_linear_weights",
    "stlpips_trunk",
    "unit_features",
]
