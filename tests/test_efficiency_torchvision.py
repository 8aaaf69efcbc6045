"""MACs and parameter counts of torchvision's classification models against their published figures.

Reference: the ``_ops`` and ``num_params`` entries of each model's default weights' ``meta``
(torchvision 0.29), read from the weights enum without downloading anything. torchvision labels
``_ops`` "GFLOPS" in its documentation, but the values are billions of multiply-accumulates
(resnet50: 4.089), so they are compared with ``count_macs(...).macs / 1e9``. The published
values have three decimals, so the tolerance is 0.5% or half a unit of the last digit
(0.0005 GMACs), whichever is larger (mobilenet_v3_small: 0.05652 GMACs published as 0.057).

Every model is built with ``weights=None`` on the meta device and counted at the crop size of
its default weights' evaluation transform. All 80 models take about 12 s of CPU time on one
core, so every one of them runs in the default suite.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torchvision import models

from andante_metrics import build_on_meta, count_macs


def _published_models() -> list[str]:
    names = []
    for name in models.list_models(module=models):
        weights = models.get_model_weights(name).DEFAULT
        if "_ops" in weights.meta:
            names.append(name)
    return names


PUBLISHED = _published_models()


def _builder_options(name: str, crop: int) -> dict:
    # The published weights of googlenet drop the auxiliary classifiers after loading.
    if name == "googlenet":
        return {"aux_logits": False, "init_weights": False}
    if name == "inception_v3":
        return {"init_weights": False}
    # ViT's position embedding is sized for one image size; the SWAG weights use 384 or 518.
    if name.startswith("vit_"):
        return {"image_size": crop}
    return {}


def test_published_model_list_size():
    """torchvision 0.29 publishes ``_ops`` for 80 classification models."""
    assert len(PUBLISHED) == 80


def _check_model(name: str) -> None:
    weights = models.get_model_weights(name).DEFAULT
    crop = weights.transforms().crop_size[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = build_on_meta(
            models.get_model, name, weights=None, **_builder_options(name, crop)
        ).eval()

    result = count_macs(model, torch.empty(1, 3, crop, crop, device="meta"))
    gmacs = result.macs / 1e9
    published = weights.meta["_ops"]
    params = sum(p.numel() for p in model.parameters())

    assert abs(gmacs - published) <= max(0.005 * published, 0.0005), (gmacs, published)
    assert params == weights.meta["num_params"]
    assert result.by_module[""].macs == result.macs


@pytest.mark.parametrize("name", PUBLISHED)
def test_macs_match_torchvision(name):
    _check_model(name)
