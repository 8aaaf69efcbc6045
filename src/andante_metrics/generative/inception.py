"""The FID Inception v3 network: 2048-d pool features, weights loaded only from a local file.

The network is the PyTorch port of the TensorFlow Inception graph of 2015-12-05 that the FID
paper (Heusel et al., NeurIPS 2017) used and that pytorch-fid 0.3 and torch-fidelity 0.4
reproduce. It differs from torchvision's ImageNet Inception v3 in three places. The average
pools inside the A, C and first E blocks leave the zero padding out of the mean (TensorFlow's
behaviour). The last E block pools with a max instead of an average. The classifier has 1008
outputs. Parameter names follow torchvision's layout, so the pytorch-fid checkpoint
``pt_inception-2015-12-05-6726825d.pth`` loads as it is.

Nothing here downloads. The weights file is looked up, in order, at the ``weights_path``
argument, at the path in the ``ANDANTE_FID_WEIGHTS`` environment variable, and in the torch hub
checkpoint folder (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``)
where pytorch-fid stores its download.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from andante_metrics.utilities.checks import check_in_choices, check_tensor

WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_ENV_VAR = "ANDANTE_FID_WEIGHTS"
INPUT_SIZE = 299
Resize = Literal["bilinear", "tf1-bilinear", "none"]
_RESIZE_CHOICES = ("bilinear", "tf1-bilinear", "none")


def _checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_inception_weights(weights_path: str | os.PathLike | None = None) -> Path:
    """Return the path of the FID Inception weights file, or raise ``FileNotFoundError``.

    Looks at ``weights_path``, then at ``$ANDANTE_FID_WEIGHTS``, then for
    ``pt_inception-2015-12-05-6726825d.pth`` in the torch hub checkpoint folder. A path given
    explicitly (argument or environment variable) must exist; it is never replaced by another.
    """
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"`weights_path` {str(path)!r} does not exist or is not a file."
            )
        return path
    from_env = os.environ.get(WEIGHTS_ENV_VAR)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"${WEIGHTS_ENV_VAR} points to {str(path)!r}, which does not exist or is not a "
                f"file."
            )
        return path
    path = _checkpoint_dir() / WEIGHTS_FILENAME
    if path.is_file():
        return path
    raise FileNotFoundError(
        f"The FID Inception weights file {WEIGHTS_FILENAME} was not found, and andante_metrics "
        f"never downloads it. Copy the file (the one pytorch-fid downloads from its GitHub "
        f"release 'fid_weights') to {path}, or pass its path as `weights_path`, or set "
        f"${WEIGHTS_ENV_VAR} to its path."
    )


class _ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3) and ReLU: the unit of every block."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_without_padding(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool divides by the number of real pixels in the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):
    def __init__(self, in_channels: int, pool_channels: int):
        super().__init__()
        self.branch1x1 = _ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = _ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(in_channels, pool_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one = self.branch1x1(x)
        five = self.branch5x5_2(self.branch5x5_1(x))
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(_avg_pool_without_padding(x))
        return torch.cat([one, five, double, pool], 1)


class _BlockB(nn.Module):
    """Grid reduction 35x35 to 17x17."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = _ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3(x)
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([three, double, pool], 1)


class _BlockC(nn.Module):
    """Factorised 7x7 convolutions on the 17x17 grid."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c = channels_7x7
        self.branch1x1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = _ConvBN(in_channels, c, 1)
        self.branch7x7_2 = _ConvBN(c, c, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(in_channels, c, 1)
        self.branch7x7dbl_2 = _ConvBN(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c, c, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one = self.branch1x1(x)
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            double = layer(double)
        pool = self.branch_pool(_avg_pool_without_padding(x))
        return torch.cat([one, seven, double, pool], 1)


class _BlockD(nn.Module):
    """Grid reduction 17x17 to 8x8."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_2(self.branch3x3_1(x))
        seven = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            seven = layer(seven)
        pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([three, seven, pool], 1)


class _BlockE(nn.Module):
    """Expanded filter bank on the 8x8 grid; ``max_pool`` selects the last block's pooling."""

    def __init__(self, in_channels: int, *, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = _ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one = self.branch1x1(x)
        three = self.branch3x3_1(x)
        three = torch.cat([self.branch3x3_2a(three), self.branch3x3_2b(three)], 1)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        double = torch.cat([self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double)], 1)
        if self.max_pool:
            # The 2015 TensorFlow graph max-pools here, unlike the published architecture.
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_without_padding(x)
        return torch.cat([one, three, double, self.branch_pool(pooled)], 1)


def _resize_axis_tf1(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Resize one axis as TensorFlow 1's ``resize_bilinear`` with ``align_corners=False``.

    Output pixel ``i`` samples the input at ``i * in / out`` (no half-pixel offset), between
    pixels ``floor`` and ``floor + 1`` clipped to the last one.
    """
    length = x.shape[dim]
    # TensorFlow computes the scale and the positions in float32; so does this, to match it.
    scale = torch.tensor(length / size, dtype=torch.float32, device=x.device)
    position = torch.arange(size, dtype=torch.float32, device=x.device) * scale
    low = position.floor().long()
    high = (low + 1).clamp(max=length - 1)
    weight_shape = [1] * x.ndim
    weight_shape[dim] = size
    weight = (position - low).to(x.dtype).reshape(weight_shape)
    return x.index_select(dim, low) * (1 - weight) + x.index_select(dim, high) * weight


def preprocess_images(
    images: torch.Tensor, *, quantize: bool = True, resize: Resize = "bilinear"
) -> torch.Tensor:
    """Turn images into the FID Inception input: float32 in [-1, 1], 3 x 299 x 299.

    The default is the reference pipeline of pytorch-fid 0.3: uint8 pixels divided by 255, a
    bilinear resize to 299 x 299 (``F.interpolate`` with ``align_corners=False``), then
    ``2 x - 1``.

    Args:
        images: ``(N, 3, H, W)`` or ``(N, 1, H, W)`` images, uint8 in [0, 255] or float in
            [0, 1]. One channel is repeated to three.
        quantize: round float images to the 256 levels of uint8 first, as saving them to PNG
            would, so float and uint8 copies of an image give the same features.
        resize: ``"bilinear"`` (reference, as pytorch-fid), ``"tf1-bilinear"`` (the sampling
            grid of TensorFlow 1's ``resize_bilinear``, which the original TensorFlow FID code
            and torch-fidelity use) or ``"none"`` (the network needs at least 75 x 75 then).

    Returns:
        ``(N, 3, 299, 299)`` float32 (or ``(N, 3, H, W)`` with ``resize="none"``).
    """
    check_tensor(images, "images", ndim=4, dtype="number")
    check_in_choices(resize, "resize", _RESIZE_CHOICES)
    if images.shape[1] not in (1, 3):
        raise ValueError(
            f"`images` must have 1 or 3 channels (N, C, H, W), got shape {tuple(images.shape)}."
        )
    if images.dtype == torch.uint8:
        x = images.float() / 255.0
    elif images.is_floating_point():
        finite = bool(torch.isfinite(images).all())
        low = float(images.min()) if images.numel() else 0.0
        high = float(images.max()) if images.numel() else 0.0
        if not finite or low < 0.0 or high > 1.0:
            raise ValueError(
                f"float `images` must hold values in [0, 1], got values in [{low}, {high}]; "
                f"divide uint8 pixels by 255 or pass the uint8 tensor."
            )
        x = images.float()
        if quantize:
            x = torch.round(x * 255.0) / 255.0
    else:
        raise TypeError(
            f"`images` must be uint8 in [0, 255] or float in [0, 1], got dtype {images.dtype}."
        )
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if resize != "none" and tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        if resize == "bilinear":
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                              align_corners=False)
        else:
            x = _resize_axis_tf1(_resize_axis_tf1(x, INPUT_SIZE, 2), INPUT_SIZE, 3)
    return 2.0 * x - 1.0


class _InceptionNetwork(nn.Module):
    """The layers of the FID Inception v3 up to the average pool, randomly initialised."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _BlockA(192, 32)
        self.Mixed_5c = _BlockA(256, 64)
        self.Mixed_5d = _BlockA(288, 64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, 128)
        self.Mixed_6c = _BlockC(768, 160)
        self.Mixed_6d = _BlockC(768, 160)
        self.Mixed_6e = _BlockC(768, 192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)

    def pool_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 2048)`` pool features of a preprocessed ``(N, 3, H, W)`` batch."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class FIDInceptionV3(_InceptionNetwork):
    """FID Inception v3 feature extractor: images to ``(N, 2048)`` average-pool features.

    Args:
        weights_path: the weights file; ``None`` searches ``$ANDANTE_FID_WEIGHTS`` and the torch
            hub checkpoint folder (see :func:`find_inception_weights`).
        quantize: see :func:`preprocess_images`.
        resize: see :func:`preprocess_images`.

    Raises:
        FileNotFoundError: no weights file found; the message names the folder to copy it to.

    The weights are loaded with ``torch.load(..., weights_only=True)``. The 1008-way classifier
    of the checkpoint is not used and not kept. The network is put in eval mode and its
    parameters do not require gradients.
    """

    def __init__(
        self,
        weights_path: str | os.PathLike | None = None,
        *,
        quantize: bool = True,
        resize: Resize = "bilinear",
    ) -> None:
        check_in_choices(resize, "resize", _RESIZE_CHOICES)
        path = find_inception_weights(weights_path)
        super().__init__()
        self.quantize = quantize
        self.resize = resize
        self.load_weights(path)
        self.eval()
        self.requires_grad_(False)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load a pytorch-fid style checkpoint; keys of the unused classifier are ignored."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{str(path)!r} is not an FID Inception v3 checkpoint: {len(missing)} missing "
                f"keys (first: {missing[:3]}) and {len(unexpected)} unexpected keys "
                f"(first: {unexpected[:3]})."
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return the ``(N, 2048)`` float32 pool features of a batch of images."""
        x = preprocess_images(images, quantize=self.quantize, resize=self.resize)
        return self.pool_features(x.to(self.Conv2d_1a_3x3.conv.weight.device))
