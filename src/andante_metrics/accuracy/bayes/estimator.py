r"""Bayes-error estimates and bounds from labelled samples: k-NN, MST (GHP) and soft labels.

The Bayes error of a ``K``-class problem with class posteriors :math:`\eta_k(x)` is
:math:`\varepsilon^* = E[1 - \max_k \eta_k(X)]`, the error of the best possible classifier.
Three methods estimate it from a sample:

* ``knn``: the leave-one-out k-NN error :math:`\hat R`. Its limit :math:`R_\infty` is an upper
  bound of :math:`\varepsilon^*` and, for ``k = 1``, satisfies the Cover-Hart inequality
  :math:`R_\infty \le \varepsilon^* (2 - K\varepsilon^*/(K-1))`, which solved for
  :math:`\varepsilon^*` gives the lower bound
  :math:`L(R) = \frac{K-1}{K}\left(1 - \sqrt{1 - \frac{K}{K-1} R}\right)`.
* ``ghp``: the fraction :math:`\hat G` of the edges of the Euclidean minimum spanning tree of
  the pooled sample that join two classes. It estimates twice the sum of the generalized
  Henze-Penrose integrals :math:`\delta_{ij} = \int p_i p_j f_i f_j / f = E[\eta_i \eta_j]`,
  so :math:`\hat G \to G = 1 - E[\sum_k \eta_k^2]`. The bounds are
  :math:`L(G) \le \varepsilon^* \le G`: the upper one because
  :math:`\sum_k \eta_k^2 \le \max_k \eta_k`, the lower one because
  :math:`E[\max_k\eta_k]^2 + (1-E[\max_k\eta_k])^2/(K-1) \le E[\sum_k \eta_k^2]`
  (Cauchy-Schwarz on the non-maximal classes, then Jensen).
* ``soft_label``: :math:`\hat\varepsilon = \frac{1}{N}\sum_i (1 - \max_k c_{ik})` from
  per-sample class probabilities :math:`c_{ik}` (binary form :math:`\min(c_i, 1 - c_i)`),
  unbiased when :math:`c` are the true posteriors.

Sources: T. Cover and P. Hart, "Nearest neighbor pattern classification", IEEE Trans. Inf.
Theory 13, 1967; S. Y. Sekeh, B. Oselio and A. O. Hero, "Learning to Bound the Multi-class
Bayes Error", IEEE Trans. Signal Process. 68, 2020 (the bounds above are re-derived here from
their definitions); T. Ishida, I. Yamane, N. Charoenphakdee, G. Niu and M. Sugiyama, "Is the
Performance of My Deep Network Too Good to Be True? A Direct Approach to Estimating the Bayes
Error in Binary Classification", ICLR 2023.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torchmetrics.utilities.data import dim_zero_cat

from andante_metrics.accuracy.bayes._distances import (
    leave_one_out_neighbors,
    minimum_spanning_tree,
)
from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import (
    check_finite,
    check_in_choices,
    check_int_range,
    check_labels_in_range,
    check_same_first_dim,
    check_tensor,
)

Method = Literal["knn", "ghp", "soft_label"]
Backend = Literal["torch", "faiss"]
METHODS = ("knn", "ghp", "soft_label")
BACKENDS = ("torch", "faiss")
# Rows of soft labels must sum to 1 within this tolerance.
_PROB_SUM_TOL = 1e-3
# Bootstrap replicates are drawn in groups of at most this many resampled values.
_BOOTSTRAP_ELEMENTS = 2**22


@dataclass
class BayesErrorResult:
    """Bayes-error estimate, bounds and bootstrap interval of one method.

    A NaN field is intentional, not a failure: it marks a quantity the method does not provide
    (``knn`` and ``ghp`` give bounds and no point estimate, ``soft_label`` gives an estimate and
    no bounds), or an interval when ``n_bootstrap=0``.

    Attributes:
        method: ``"knn"``, ``"ghp"`` or ``"soft_label"``.
        estimate: point estimate of the Bayes error (``soft_label`` only, else NaN).
        lower: lower bound (``knn``, ``ghp``; NaN for ``soft_label``).
        upper: upper bound (``knn``: the leave-one-out k-NN error; ``ghp``: the cross-class
            edge fraction; NaN for ``soft_label``).
        ci_low: lower end of the percentile bootstrap interval: of ``estimate`` for
            ``soft_label``, of ``lower`` for the bound methods.
        ci_high: upper end: of ``estimate`` for ``soft_label``, of ``upper`` for the bound
            methods, so ``[ci_low, ci_high]`` covers the bracket with the stated confidence.
        confidence: the two-sided level of the interval.
        num_samples: ``N``.
        num_classes: ``K``.
    """

    method: str
    estimate: float
    lower: float
    upper: float
    ci_low: float
    ci_high: float
    confidence: float
    num_samples: int
    num_classes: int


def cover_hart_lower_bound(error: float | torch.Tensor, num_classes: int) -> torch.Tensor:
    r"""Return :math:`\frac{K-1}{K}(1 - \sqrt{1 - \frac{K}{K-1} R})`, the Bayes error below ``R``.

    ``R`` is an asymptotic 1-NN error (or the Gini impurity :math:`1 - E[\sum_k \eta_k^2]`).
    Values of ``R`` above :math:`(K-1)/K`, which only sampling noise produces, give
    :math:`(K-1)/K`. ``R`` outside [0, 1] or NaN, and ``num_classes`` below 2, raise
    ``ValueError``.

    Example:
        >>> float(cover_hart_lower_bound(0.5, 2))
        0.5
    """
    check_int_range(num_classes, "num_classes", low=2)
    error = torch.as_tensor(error, dtype=torch.float64)
    if not bool(((error >= 0.0) & (error <= 1.0)).all()):
        raise ValueError(
            f"`error` must contain error rates in [0, 1] (NaN is rejected), got {error.tolist()!r}."
        )
    factor = (num_classes - 1) / num_classes
    return factor * (1.0 - torch.sqrt((1.0 - error / factor).clamp(min=0.0)))


def _check_options(method: str, num_classes: int, k: int, n_bootstrap: int, confidence: float,
                   backend: str, chunk_size: int | None) -> None:
    check_in_choices(method, "method", METHODS)
    check_in_choices(backend, "backend", BACKENDS)
    check_int_range(num_classes, "num_classes", low=2)
    check_int_range(k, "k", low=1)
    check_int_range(n_bootstrap, "n_bootstrap", low=0)
    if chunk_size is not None:
        check_int_range(chunk_size, "chunk_size", low=1)
    if isinstance(confidence, bool) or not isinstance(confidence, float) or not (
        0.0 < confidence < 1.0
    ):
        raise ValueError(
            f"`confidence` must be a float strictly between 0 and 1, got {confidence!r}; "
            f"pass for example 0.95."
        )
    if backend == "faiss" and importlib.util.find_spec("faiss") is None:
        raise ModuleNotFoundError(
            "backend='faiss' needs the faiss package, which is not installed; install "
            "faiss-cpu or use backend='torch'."
        )


def _bayes_update(
    features: torch.Tensor, labels: torch.Tensor, method: str, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a batch and return what the state keeps: features (or soft-label values), labels.

    ``knn`` and ``ghp`` keep the features as float32. ``soft_label`` keeps only the float64
    per-sample values :math:`1 - \\max_k c_k`, one column.
    """
    check_tensor(features, "features", ndim=2, dtype="float")
    check_tensor(labels, "labels", ndim=1, dtype="int")
    check_same_first_dim(features, labels, "features", "labels")
    check_finite(features, "features")
    check_labels_in_range(labels, num_classes, "labels")
    if method != "soft_label":
        return features.detach().float(), labels.long()
    probs = features.detach().double()
    if probs.shape[1] != num_classes:
        raise ValueError(
            f"`features` must hold (N, num_classes={num_classes}) class probabilities for "
            f"method='soft_label', got shape {tuple(probs.shape)}."
        )
    if probs.numel():
        low, high = float(probs.min()), float(probs.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"`features` must hold probabilities in [0, 1] for method='soft_label', got "
                f"values in [{low:.4g}, {high:.4g}]; apply softmax to logits first."
            )
        worst = float((probs.sum(dim=1) - 1.0).abs().max())
        if worst > _PROB_SUM_TOL:
            raise ValueError(
                f"`features` rows must sum to 1 for method='soft_label', got a row that is off "
                f"by {worst:.4g}; normalise the soft labels."
            )
    return 1.0 - probs.max(dim=1, keepdim=True).values, labels.long()


def _bootstrap_means(values: torch.Tensor, n_bootstrap: int, seed: int) -> torch.Tensor:
    """Return ``n_bootstrap`` means of resamples (with replacement) of ``values``.

    The values are sorted first, so the replicates depend only on the multiset of values and
    not on the order in which the samples arrived (batches, processes).
    """
    values = values.detach().double().cpu().sort().values
    num = len(values)
    generator = torch.Generator().manual_seed(seed)
    per_group = max(1, _BOOTSTRAP_ELEMENTS // num)
    means = []
    for start in range(0, n_bootstrap, per_group):
        size = min(per_group, n_bootstrap - start)
        picks = torch.randint(num, (size, num), generator=generator)
        means.append(values[picks].mean(dim=1))
    return torch.cat(means) if means else torch.zeros(0, dtype=torch.float64)


def _percentiles(replicates: torch.Tensor, confidence: float) -> tuple[float, float]:
    if len(replicates) == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0
    low, high = torch.quantile(replicates, torch.tensor([tail, 1.0 - tail], dtype=torch.float64))
    return float(low), float(high)


def _per_sample_errors(features: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int,
                       chunk_size: int | None, backend: str, progress: bool) -> torch.Tensor:
    """Return the 0/1 leave-one-out k-NN error of every sample (plurality vote).

    A tie in the vote goes to the smallest class index, as in scikit-learn's
    ``KNeighborsClassifier``.
    """
    neighbors = leave_one_out_neighbors(
        features, k, chunk_size=chunk_size, backend=backend, progress=progress
    )
    votes = torch.zeros(len(labels), num_classes, device=labels.device)
    votes.scatter_add_(1, labels[neighbors], torch.ones(neighbors.shape, device=labels.device))
    return (votes.argmax(dim=1) != labels).double()


def _cross_edges(features: torch.Tensor, labels: torch.Tensor, chunk_size: int | None,
                 progress: bool) -> torch.Tensor:
    """Return, per edge of the Euclidean MST, 1.0 when it joins two classes, else 0.0."""
    edges = minimum_spanning_tree(features, chunk_size=chunk_size, progress=progress)
    labels = labels.cpu()
    return (labels[edges[:, 0]] != labels[edges[:, 1]]).double()


def _bayes_compute(
    stored: torch.Tensor, labels: torch.Tensor, *, method: str, num_classes: int, k: int,
    n_bootstrap: int, confidence: float, seed: int, chunk_size: int | None, backend: str,
    progress: bool,
) -> BayesErrorResult:
    num = len(labels)
    needed = {"knn": k + 1, "ghp": 2, "soft_label": 1}[method]
    if num < needed:
        raise ValueError(
            f"method={method!r} needs at least {needed} samples, got {num}; pass more samples"
            + (" or lower `k`." if method == "knn" else ".")
        )
    if method == "soft_label":
        values = stored[:, 0]
        estimate = float(values.mean())
        ci = _percentiles(_bootstrap_means(values, n_bootstrap, seed), confidence)
        return BayesErrorResult(method, estimate, math.nan, math.nan, ci[0], ci[1], confidence,
                                num, num_classes)
    if method == "knn":
        values = _per_sample_errors(stored, labels, num_classes, k, chunk_size, backend, progress)
    else:
        values = _cross_edges(stored, labels, chunk_size, progress)
    upper = float(values.mean())
    lower = float(cover_hart_lower_bound(upper, num_classes))
    ci_upper = _percentiles(_bootstrap_means(values, n_bootstrap, seed), confidence)
    ci_low = float(cover_hart_lower_bound(ci_upper[0], num_classes)) if n_bootstrap else math.nan
    return BayesErrorResult(method, math.nan, lower, upper, ci_low, ci_upper[1], confidence,
                            num, num_classes)


def bayes_error(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    method: Method = "knn",
    k: int = 1,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    chunk_size: int | None = None,
    backend: Backend = "torch",
    progress: bool = False,
) -> BayesErrorResult:
    r"""Estimate or bound the Bayes error of a labelled sample.

    See the module docstring for the three methods and their formulas. Which fields are what:

    * ``knn``: ``upper`` is the leave-one-out k-NN error, ``lower`` the Cover-Hart bound
      :math:`L(\hat R)`; no ``estimate``.
    * ``ghp``: ``upper`` is the cross-class fraction :math:`\hat G` of the minimum-spanning-tree
      edges, ``lower`` is :math:`L(\hat G)`; no ``estimate``.
    * ``soft_label``: ``estimate`` is the mean of :math:`1 - \max_k c_k`; no bounds.

    Finite samples: the bounds of ``knn`` and ``ghp`` hold for the limits :math:`R_\infty` and
    :math:`G`, not for every sample. The leave-one-out k-NN error and the edge fraction converge
    at a rate that slows with the dimension (about :math:`N^{-2/D}` for smooth densities), and
    in high dimension they usually sit above their limits, which loosens the upper bound and
    can push the lower bound above the Bayes error. The Cover-Hart lower bound is guaranteed
    for ``k = 1``; for ``k > 1`` it still holds in the binary case with odd ``k``, because the
    limit of the k-NN error lies between the Bayes error and the 1-NN limit, and elsewhere it
    is a heuristic. ``soft_label`` is unbiased when the soft labels are the true posteriors, with
    standard error :math:`\mathrm{sd}(1 - \max_k c_k)/\sqrt{N}`; an over-confident model gives an
    estimate that is too low.

    The interval is a percentile bootstrap over the per-sample values (0/1 k-NN errors, 0/1
    edge labels or :math:`1 - \max_k c_k`) with the neighbours and the tree held fixed, so it
    measures sampling noise of the average, not the bias above. For the bound methods it runs
    from the bound :math:`L` at the lower percentile to the upper bound at the upper percentile.

    Args:
        features: ``(N, D)`` float features (raw inputs flattened, or embeddings) for ``knn``
            and ``ghp``; ``(N, K)`` class probabilities for ``soft_label``.
        labels: ``(N,)`` integer class indices in ``[0, K)``.
        num_classes: ``K``, at least 2.
        method: ``"knn"``, ``"ghp"`` or ``"soft_label"``.
        k: neighbours of the ``knn`` vote (ties go to the smallest class index).
        n_bootstrap: bootstrap replicates, 0 for no interval (NaN ends).
        confidence: two-sided level of the interval, in (0, 1).
        seed: seed of the bootstrap resampling.
        chunk_size: side of the square tiles of distances (memory about ``chunk_size**2``
            floats); ``None`` means 4096.
        backend: ``"torch"`` (the device of ``features``) or ``"faiss"`` (CPU; ``knn`` only,
            needs the faiss package).
        progress: show a progress bar over the tiles of distances.

    Returns:
        A :class:`BayesErrorResult` of floats in [0, 1], NaN where the method has none. Too few
        samples (``k + 1`` for ``knn``, 2 for ``ghp``, 1 for ``soft_label``) raise
        ``ValueError``.

    Example:
        >>> import torch
        >>> probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])
        >>> result = bayes_error(probs, torch.tensor([0, 1, 0]), num_classes=2,
        ...                      method="soft_label", n_bootstrap=0)
        >>> round(result.estimate, 4), result.lower
        (0.3, nan)
    """
    _check_options(method, num_classes, k, n_bootstrap, confidence, backend, chunk_size)
    stored, labels = _bayes_update(features, labels, method, num_classes)
    return _bayes_compute(
        stored, labels, method=method, num_classes=num_classes, k=k, n_bootstrap=n_bootstrap,
        confidence=confidence, seed=seed, chunk_size=chunk_size, backend=backend,
        progress=progress,
    )


class BayesErrorEstimator(KPIMetric):
    """Stateful Bayes-error estimator; see :func:`bayes_error` for the methods and fields.

    State: for ``knn`` and ``ghp`` every feature row (float32) and label, because neighbours
    and the spanning tree need all samples; for ``soft_label`` only the per-sample value
    :math:`1 - \\max_k c_k` and the labels. States are concatenated across processes, and the
    result does not depend on batch split, batch order or world size, except that exact ties
    between distances go to the smaller index. ``compute()`` before any sample raises
    ``ValueError``.

    ``update(features, labels)`` takes ``(N, D)`` features for ``knn`` and ``ghp`` and
    ``(N, K)`` class probabilities for ``soft_label``.

    Example:
        >>> import torch
        >>> metric = BayesErrorEstimator(num_classes=2, method="knn", n_bootstrap=0)
        >>> metric.update(torch.tensor([[0.0], [0.1], [1.0], [1.1]]), torch.tensor([0, 0, 1, 1]))
        >>> metric.compute().upper
        0.0
    """

    kpi_area = "accuracy"
    unit = "fraction"
    higher_is_better = None

    def __init__(
        self,
        *,
        num_classes: int,
        method: Method = "knn",
        k: int = 1,
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        chunk_size: int | None = None,
        backend: Backend = "torch",
        progress: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check_options(method, num_classes, k, n_bootstrap, confidence, backend, chunk_size)
        self.num_classes = num_classes
        self.method = method
        self.k = k
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.seed = seed
        self.chunk_size = chunk_size
        self.backend = backend
        self.progress = progress
        self.add_state("stored", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch of ``(N, D)`` features (or ``(N, K)`` probabilities) and ``(N,)`` labels."""
        stored, labels = _bayes_update(features, labels, self.method, self.num_classes)
        self.stored.append(stored)
        self.labels.append(labels)

    def compute(self) -> BayesErrorResult:
        """Return the estimate, bounds and interval of every sample seen so far."""
        labels = dim_zero_cat(self.labels) if len(self.labels) else torch.zeros(0)
        self._check_not_empty(labels.numel())
        return _bayes_compute(
            dim_zero_cat(self.stored), labels, method=self.method, num_classes=self.num_classes,
            k=self.k, n_bootstrap=self.n_bootstrap, confidence=self.confidence, seed=self.seed,
            chunk_size=self.chunk_size, backend=self.backend, progress=self.progress,
        )
