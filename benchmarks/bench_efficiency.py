"""Speed of the dispatch-level MAC counter.

1. Counting time of every torchvision classification model that publishes ``_ops``: each is
   built with ``weights=None`` on the meta device and counted at its evaluation size. The MACs
   are checked against ``_ops`` (0.5% or half a unit of its last published digit).
2. Counting overhead on a real forward pass (CPU, random weights): a plain forward under
   ``no_grad``, ``count_macs`` and fvcore's ``FlopCountAnalysis(...).total()`` (a jit-trace
   counter), timed interleaved in one process, best of the rounds. Both counters' convolution
   and linear MACs are checked equal.

Run: ``OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_efficiency.py`` (``--skip-all``
skips the 80-model part, ``--skip-overhead`` the forward-pass part).
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from fvcore.nn import FlopCountAnalysis
from torchvision import models

from andante_metrics import build_on_meta, count_macs
from andante_metrics.demo.model import DigitsCNN

from harness import interleaved, machine_line, report


def _builder_options(name: str, crop: int) -> dict:
    if name == "googlenet":
        return {"aux_logits": False, "init_weights": False}
    if name == "inception_v3":
        return {"init_weights": False}
    if name.startswith("vit_"):
        return {"image_size": crop}
    return {}


def count_all_models() -> None:
    """Build and count every published model on meta; print times and check against ``_ops``."""
    names = [n for n in models.list_models(module=models)
             if "_ops" in models.get_model_weights(n).DEFAULT.meta]
    build_seconds = count_seconds = build_cpu = count_cpu = 0.0
    mismatches = []
    for name in names:
        weights = models.get_model_weights(name).DEFAULT
        crop = weights.transforms().crop_size[0]
        start, start_cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = build_on_meta(models.get_model, name, weights=None,
                                  **_builder_options(name, crop)).eval()
        built, built_cpu = time.perf_counter(), time.process_time()
        macs = count_macs(model, torch.empty(1, 3, crop, crop, device="meta")).macs
        counted, counted_cpu = time.perf_counter(), time.process_time()
        build_seconds += built - start
        count_seconds += counted - built
        build_cpu += built_cpu - start_cpu
        count_cpu += counted_cpu - built_cpu
        published = weights.meta["_ops"]
        if abs(macs / 1e9 - published) > max(0.005 * published, 0.0005):
            mismatches.append((name, macs / 1e9, published))
    print(f"\nCounting all {len(names)} torchvision models on the meta device")
    print(f"  machine: {machine_line()}")
    print(f"  wall clock: build on meta {build_seconds:.2f} s, count_macs {count_seconds:.2f} s, "
          f"total {build_seconds + count_seconds:.2f} s")
    # CPU time of this process: on a machine shared with other jobs it is closer than the wall
    # clock to what the same work takes on an idle machine.
    print(f"  process CPU time: build on meta {build_cpu:.2f} s, count_macs {count_cpu:.2f} s, "
          f"total {build_cpu + count_cpu:.2f} s")
    print(f"  models outside the tolerance of _ops: {mismatches or 'none'}")


def _fvcore_total(model: torch.nn.Module, x: torch.Tensor) -> int:
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analysis.total())


def _check_equal(model: torch.nn.Module, x: torch.Tensor) -> None:
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    theirs = sum(by_op.get(key, 0) for key in ("conv", "linear", "addmm"))
    ours = count_macs(model, x)
    mine = sum(ours.by_operator[key].macs for key in ("aten.convolution", "aten.addmm")
               if key in ours.by_operator)
    if mine != theirs:
        raise AssertionError(f"convolution + linear MACs differ: ours {mine}, fvcore {theirs}")
    print(f"  convolution + linear MACs equal: {mine:,}")


def overhead(rounds: int) -> None:
    """Time plain forward, count_macs and fvcore on real CPU forward passes."""
    torch.manual_seed(0)
    cases = [
        ("resnet18, 1x3x224x224", models.resnet18(weights=None), torch.randn(1, 3, 224, 224)),
        ("mobilenet_v2, 1x3x224x224", models.mobilenet_v2(weights=None),
         torch.randn(1, 3, 224, 224)),
        ("resnet18, 8x3x224x224", models.resnet18(weights=None), torch.randn(8, 3, 224, 224)),
        ("digits CNN, 256x1x8x8", DigitsCNN(), torch.randn(256, 1, 8, 8)),
    ]
    for label, model, x in cases:
        model.eval()

        def plain(model=model, x=x):
            with torch.no_grad():
                model(x)

        timings = interleaved({
            "count_macs": lambda model=model, x=x: count_macs(model, x),
            "plain forward": plain,
            "fvcore FlopCountAnalysis": lambda model=model, x=x: _fvcore_total(model, x),
        }, rounds=rounds)
        ratios = report(f"Counting overhead, {label}", timings, ours="count_macs")
        print(f"  count_macs / plain forward = {1 / ratios['plain forward']:.2f}x")
        _check_equal(model, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-all", action="store_true", help="skip the 80-model counting")
    parser.add_argument("--skip-overhead", action="store_true",
                        help="skip the forward-pass overhead part")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per contender")
    args = parser.parse_args()
    if not args.skip_all:
        count_all_models()
    if not args.skip_overhead:
        overhead(args.rounds)


if __name__ == "__main__":
    main()
