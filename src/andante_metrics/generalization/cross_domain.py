r"""Cross-domain gap: a metric on several evaluation domains, relative to the in-domain value.

For domains :math:`d` with metric values :math:`v_d` and the in-domain value :math:`v_0`,
the table reports :math:`v_d`, the delta :math:`v_d - v_0` and the ratio :math:`v_d / v_0`.
The stateful :class:`CrossDomainGap` accumulates any metric that is a mean of per-sample scores
(correctness for accuracy, per-sample loss, per-sample error); :func:`cross_domain_table` takes
values already computed, so it also serves metrics that are not such means (AUROC, FID).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from andante_metrics.base import KPIMetric
from andante_metrics.utilities.checks import (
    check_finite,
    check_in_choices,
    check_same_first_dim,
    check_tensor,
)

TABLE_COLUMNS = ["domain", "value", "delta", "relative"]


def cross_domain_table(values: Mapping[str, float], *, in_domain: str) -> list[list[object]]:
    """Return rows ``[domain, value, value - in_value, value / in_value]``, in-domain first.

    ``relative`` is NaN when the in-domain value is 0.

    Example:
        >>> cross_domain_table({"clean": 0.9, "rotated": 0.6}, in_domain="clean")[1]
        ['rotated', 0.6, -0.30000000000000004, 0.6666666666666666]
    """
    if not isinstance(values, Mapping) or not values:
        raise ValueError(f"`values` must be a non-empty mapping of domain name to value, got "
                         f"{values!r}.")
    check_in_choices(in_domain, "in_domain", list(values))
    reference = float(values[in_domain])
    order = [in_domain, *(name for name in values if name != in_domain)]
    rows: list[list[object]] = []
    for name in order:
        value = float(values[name])
        relative = value / reference if reference != 0 else float("nan")
        rows.append([name, value, value - reference, relative])
    return rows


def _check_domains(domains: Sequence[str], in_domain: str | None) -> tuple[list[str], int]:
    names = list(domains)
    if len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise ValueError(f"`domains` must list at least two domain names (str), got {domains!r}.")
    if len(set(names)) != len(names):
        raise ValueError(f"`domains` must not repeat a name, got {names!r}.")
    in_name = names[0] if in_domain is None else in_domain
    check_in_choices(in_name, "in_domain", names)
    return names, names.index(in_name)


def _domain_ids(domain: torch.Tensor | str, names: list[str], size: int) -> torch.Tensor:
    if isinstance(domain, str):
        check_in_choices(domain, "domain", names)
        return torch.full((size,), names.index(domain), dtype=torch.long)
    check_tensor(domain, "domain", ndim=1, dtype="int")
    if len(domain) and (int(domain.min()) < 0 or int(domain.max()) >= len(names)):
        bad = int(domain.min()) if int(domain.min()) < 0 else int(domain.max())
        raise ValueError(f"`domain` must hold domain indices in [0, {len(names) - 1}] for "
                         f"{len(names)} domains, got {bad}.")
    return domain.long()


def _cross_domain_update(
    scores: torch.Tensor, domain: torch.Tensor | str, names: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return per-domain score sums (float64) and sample counts of one batch."""
    check_tensor(scores, "scores", ndim=1, dtype="number")
    check_finite(scores, "scores")
    ids = _domain_ids(domain, names, len(scores)).to(scores.device)
    check_same_first_dim(scores, ids, "scores", "domain")
    sums = torch.zeros(len(names), dtype=torch.float64, device=scores.device)
    sums.index_add_(0, ids, scores.double())
    counts = torch.bincount(ids, minlength=len(names))
    return sums, counts


def _cross_domain_compute(
    sums: torch.Tensor, counts: torch.Tensor, in_index: int, in_name: str
) -> dict[str, torch.Tensor]:
    if int(counts[in_index]) == 0:
        raise ValueError(f"The in-domain {in_name!r} has no samples; update it before compute().")
    values = sums / counts  # NaN for a domain without samples
    reference = values[in_index]
    return {"values": values, "delta": values - reference, "relative": values / reference}


class CrossDomainGap(KPIMetric):
    r"""Mean per-sample score on several domains, with deltas and ratios to the in-domain value.

    ``update(scores, domain)`` takes ``(N,)`` per-sample scores (for accuracy, ``1.0`` where the
    prediction is right) and either ``(N,)`` integer domain indices into ``domains`` or one
    domain name for the whole batch. ``compute()`` returns ``{"values", "delta", "relative"}``,
    each ``(D,)`` float64 in the order of ``domains``: the mean score per domain, its
    difference to the in-domain value and its ratio to it. A domain without samples gives NaN;
    an in-domain without samples raises ``ValueError``.

    Args:
        domains: names of the evaluation domains.
        in_domain: the reference domain, the first of ``domains`` by default.

    Example:
        >>> gap = CrossDomainGap(["clean", "inverted"])
        >>> gap.update(torch.tensor([1.0, 1.0, 0.0, 1.0]), "clean")
        >>> gap.update(torch.tensor([1.0, 0.0]), "inverted")
        >>> gap.compute()["delta"]
        tensor([ 0.0000, -0.2500], dtype=torch.float64)
    """

    kpi_area = "generalization"
    unit = "metric units"
    higher_is_better = None

    def __init__(self, domains: Sequence[str], *, in_domain: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.domains, self.in_index = _check_domains(domains, in_domain)
        count = len(self.domains)
        self.add_state("sums", torch.zeros(count, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", torch.zeros(count, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, domain: torch.Tensor | str) -> None:
        """Add per-sample ``scores`` to their domains."""
        sums, counts = _cross_domain_update(scores, domain, self.domains)
        self.sums += sums.to(self.sums.device)
        self.counts += counts.to(self.counts.device)

    def compute(self) -> dict[str, torch.Tensor]:
        """Return the per-domain mean score, delta and ratio to the in-domain value."""
        self._check_not_empty(self.counts.sum())
        return _cross_domain_compute(self.sums, self.counts, self.in_index,
                                     self.domains[self.in_index])

    def table(self) -> list[list[object]]:
        """Return :func:`cross_domain_table` rows of the current values, in-domain first."""
        values = self.compute()["values"].tolist()
        return cross_domain_table(dict(zip(self.domains, values, strict=True)),
                                  in_domain=self.domains[self.in_index])
