"""ResNet-50 and Wide ResNet, as Trax's `trax.models.resnet`.

The blocks (`ConvBlock`, `IdentityBlock`, `WideResnetBlock`,
`WideResnetGroup`) return lists of layers, as in Trax, so that a model's
`Serial` holds them flat and its layer tree and Trax-style `weights` are
Trax's. Inputs are NHWC images; BatchNorm layers keep running statistics,
so a model in `'train'` mode is called with `pax_trax.purecall`.
"""

from __future__ import annotations

from pax_trax import nn
from pax_trax.models import _arguments as args
from pax_trax.nn.base import check_mode

__all__ = [
    "ConvBlock",
    "IdentityBlock",
    "Resnet50",
    "WideResnetBlock",
    "WideResnetGroup",
    "WideResnet",
]



def _three_filters(filters, block):
    try:
        filters1, filters2, filters3 = (int(f) for f in filters)
    except (TypeError, ValueError):
        raise ValueError(
            f"{block}: filters must be three ints (the widths of the 1x1, kxk and 1x1 "
            f"convolutions), got {filters!r}.") from None
    return filters1, filters2, filters3


def ConvBlock(kernel_size, filters, strides, norm, non_linearity, mode="train"):
    """ResNet's convolutional block: a strided bottleneck with a projection shortcut.

    Main path: 1x1 conv (with `strides`), norm, non-linearity, `kernel_size`
    conv (SAME), norm, non-linearity, 1x1 conv, norm; shortcut: strided 1x1
    conv and norm; their sum goes through the non-linearity. Returns the
    list `[Residual(main, shortcut=shortcut), non_linearity()]`.
    """
    ks = args.positive_int(kernel_size, "kernel_size", "ConvBlock")
    filters1, filters2, filters3 = _three_filters(filters, "ConvBlock")
    main = [
        nn.Conv(filters1, (1, 1), strides),
        norm(mode=mode),
        non_linearity(),
        nn.Conv(filters2, (ks, ks), padding="SAME"),
        norm(mode=mode),
        non_linearity(),
        nn.Conv(filters3, (1, 1)),
        norm(mode=mode),
    ]
    shortcut = [
        nn.Conv(filters3, (1, 1), strides),
        norm(mode=mode),
    ]
    return [
        nn.Residual(main, shortcut=shortcut),
        non_linearity(),
    ]


def IdentityBlock(kernel_size, filters, norm, non_linearity, mode="train"):
    """ResNet's identity block: a bottleneck whose input is added back unchanged.

    Returns `[Residual(1x1 conv, norm, non-linearity, kxk conv, norm,
    non-linearity, 1x1 conv, norm), non_linearity()]`; the last filter count
    must equal the input's channels.
    """
    ks = args.positive_int(kernel_size, "kernel_size", "IdentityBlock")
    filters1, filters2, filters3 = _three_filters(filters, "IdentityBlock")
    main = [
        nn.Conv(filters1, (1, 1)),
        norm(mode=mode),
        non_linearity(),
        nn.Conv(filters2, (ks, ks), padding="SAME"),
        norm(mode=mode),
        non_linearity(),
        nn.Conv(filters3, (1, 1)),
        norm(mode=mode),
    ]
    return [
        nn.Residual(main),
        non_linearity(),
    ]


def Resnet50(d_hidden=64, n_output_classes=1001, mode="train", norm=nn.BatchNorm,
             non_linearity=nn.Relu):
    """ResNet-50 (https://arxiv.org/abs/1512.03385): NHWC images to class logits.

    A strided 7x7 conv, norm, non-linearity and 3x3 max-pool, then 4 stages
    of (ConvBlock + 2, 3, 5, 2 IdentityBlocks) with `d_hidden` times 1, 2, 4,
    8 bottleneck filters (4x that at each block's output), a 7x7 average pool
    (VALID), `Flatten` and `Dense(n_output_classes)`. The spatial size is
    halved five times before the pool, so the input must be at least about
    200 pixels on each side (224 for ImageNet); smaller images leave less
    than 7x7 for the pool, which is an error. `norm` may be e.g.
    `nn.FilterResponseNorm` with `non_linearity=nn.ThresholdedLinearUnit`.

    >>> model = Resnet50(d_hidden=8, n_output_classes=10)
    >>> [layer.name for layer in model.sublayers[-3:]]
    ['AvgPool(7,7)', 'Flatten_keep1', 'Dense_10']
    """
    d_hidden = args.positive_int(d_hidden, "d_hidden", "Resnet50")
    n_output_classes = args.positive_int(n_output_classes, "n_output_classes", "Resnet50")
    check_mode(mode, "Resnet50")

    def Resnet50ConvBlock(filter_multiplier=1, strides=(2, 2)):
        filters = [filter_multiplier * dim for dim in [d_hidden, d_hidden, 4 * d_hidden]]
        return ConvBlock(3, filters, strides, norm, non_linearity, mode)

    def Resnet50IdentityBlock(filter_multiplier=1):
        filters = [filter_multiplier * dim for dim in [d_hidden, d_hidden, 4 * d_hidden]]
        return IdentityBlock(3, filters, norm, non_linearity, mode)

    return nn.Serial(
        nn.ToFloat(),
        nn.Conv(d_hidden, (7, 7), (2, 2), "SAME"),
        norm(mode=mode),
        non_linearity(),
        nn.MaxPool(pool_size=(3, 3), strides=(2, 2)),
        Resnet50ConvBlock(strides=(1, 1)),
        [Resnet50IdentityBlock() for _ in range(2)],
        Resnet50ConvBlock(2),
        [Resnet50IdentityBlock(2) for _ in range(3)],
        Resnet50ConvBlock(4),
        [Resnet50IdentityBlock(4) for _ in range(5)],
        Resnet50ConvBlock(8),
        [Resnet50IdentityBlock(8) for _ in range(2)],
        nn.AvgPool(pool_size=(7, 7)),
        nn.Flatten(),
        nn.Dense(n_output_classes),
    )


def WideResnetBlock(channels, strides=(1, 1), bn_momentum=0.9, mode="train"):
    """Wide ResNet's pre-activation block: (BatchNorm, Relu, 3x3 conv) twice, as a list."""
    channels = args.positive_int(channels, "channels", "WideResnetBlock")
    return [
        nn.BatchNorm(momentum=bn_momentum, mode=mode),
        nn.Relu(),
        nn.Conv(channels, (3, 3), strides, padding="SAME"),
        nn.BatchNorm(momentum=bn_momentum, mode=mode),
        nn.Relu(),
        nn.Conv(channels, (3, 3), padding="SAME"),
    ]


def WideResnetGroup(n, channels, strides=(1, 1), bn_momentum=0.9, mode="train"):
    """A group of `n` Wide ResNet blocks, as a list of two residual layers.

    The first block (with `strides`) has a 3x3 conv shortcut; as in Trax,
    the other `n - 1` blocks sit in series inside one identity `Residual`.
    With `n = 1` that `Residual` is empty and, as in Trax, adds its input to
    itself (doubles it).
    """
    n = args.positive_int(n, "n", "WideResnetGroup")
    shortcut = [
        nn.Conv(channels, (3, 3), strides, padding="SAME"),
    ]
    rest = [WideResnetBlock(channels, (1, 1), bn_momentum=bn_momentum, mode=mode)
            for _ in range(n - 1)]
    return [
        nn.Residual(WideResnetBlock(channels, strides, bn_momentum=bn_momentum, mode=mode),
                    shortcut=shortcut),
        nn.Residual(rest if rest else nn.Serial()),
    ]


def WideResnet(n_blocks=3, widen_factor=1, n_output_classes=10, bn_momentum=0.9,
               mode="train"):
    """Wide ResNet (https://arxiv.org/abs/1605.07146) for 32x32 NHWC images.

    A 3x3 conv to 16 channels, three `WideResnetGroup`s of `n_blocks` blocks
    with 16, 32, 64 times `widen_factor` channels (the last two halving the
    spatial size), BatchNorm, Relu, an 8x8 average pool, `Flatten` and
    `Dense(n_output_classes)`: 6 * n_blocks + 4 layers deep.

    >>> model = WideResnet(n_blocks=2, n_output_classes=10)
    >>> [layer.name for layer in model.sublayers[-3:]]
    ['AvgPool(8,8)', 'Flatten_keep1', 'Dense_10']
    """
    n_blocks = args.positive_int(n_blocks, "n_blocks", "WideResnet")
    widen_factor = args.positive_int(widen_factor, "widen_factor", "WideResnet")
    n_output_classes = args.positive_int(n_output_classes, "n_output_classes", "WideResnet")
    check_mode(mode, "WideResnet")
    return nn.Serial(
        nn.ToFloat(),
        nn.Conv(16, (3, 3), padding="SAME"),
        WideResnetGroup(n_blocks, 16 * widen_factor, bn_momentum=bn_momentum, mode=mode),
        WideResnetGroup(n_blocks, 32 * widen_factor, (2, 2), bn_momentum=bn_momentum,
                        mode=mode),
        WideResnetGroup(n_blocks, 64 * widen_factor, (2, 2), bn_momentum=bn_momentum,
                        mode=mode),
        nn.BatchNorm(momentum=bn_momentum, mode=mode),
        nn.Relu(),
        nn.AvgPool(pool_size=(8, 8)),
        nn.Flatten(),
        nn.Dense(n_output_classes),
    )
