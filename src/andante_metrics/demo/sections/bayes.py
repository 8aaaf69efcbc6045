"""Bayes section of the demo card: Bayes-error bounds of the scikit-learn corpora and the gap.

For each corpus the table gives the leave-one-out 1-NN (Cover-Hart) and minimum-spanning-tree
(generalized Henze-Penrose) brackets of the Bayes error with a 95 % bootstrap interval, the
error of a model and the gap between them. The digits rows use the demo CNN's test error; the
small tables use a logistic regression (scikit-learn, standardized features) scored by 5-fold
stratified cross-validation.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from andante_metrics.accuracy import BayesErrorResult, GapToBayes, bayes_error
from andante_metrics.demo.runner import DemoContext, predict_logits
from andante_metrics.report import KPICard

COLUMNS = [
    "corpus",
    "classes",
    "samples",
    "Bayes error, 1-NN bounds [95% interval]",
    "Bayes error, MST bounds [95% interval]",
    "model error",
    "gap to Bayes (vs. 1-NN upper .. lower)",
]


def _standardized(values) -> torch.Tensor:
    features = torch.as_tensor(values, dtype=torch.float32)
    return (features - features.mean(dim=0)) / features.std(dim=0).clamp(min=1e-12)


def _cross_validated_error(values, labels, seed: int) -> float:
    """Return the 5-fold stratified cross-validated error of a standardized logistic regression."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    return 1.0 - float(cross_val_score(model, values, labels, cv=folds).mean())


def _row(name: str, features: torch.Tensor, labels: torch.Tensor, model_error: float,
         n_bootstrap: int, seed: int) -> tuple[list, BayesErrorResult]:
    """Return the table row of one corpus and its 1-NN Bayes-error bounds."""
    classes = int(labels.max()) + 1
    knn = bayes_error(features, labels, num_classes=classes, method="knn",
                      n_bootstrap=n_bootstrap, seed=seed)
    mst = bayes_error(features, labels, num_classes=classes, method="ghp",
                      n_bootstrap=n_bootstrap, seed=seed)
    row = [
        name, classes, len(labels),
        f"{knn.lower:.3f} .. {knn.upper:.3f} [{knn.ci_low:.3f}, {knn.ci_high:.3f}]",
        f"{mst.lower:.3f} .. {mst.upper:.3f} [{mst.ci_low:.3f}, {mst.ci_high:.3f}]",
        f"{model_error:.3f}",
        f"{model_error - knn.upper:+.3f} .. {model_error - knn.lower:+.3f}",
    ]
    return row, knn


def _add_bounds_figure(card: KPICard, bounds: dict[str, tuple[BayesErrorResult, float]]) -> None:
    """Add a bar figure with each corpus's 1-NN bounds next to its model error."""
    labels, values = [], []
    for name, (knn, model_error) in bounds.items():
        for part, value in (("1-NN lower", knn.lower), ("1-NN upper", knn.upper),
                            ("model error", model_error)):
            labels.append(f"{name}: {part}")
            values.append(value)
    card.add_figure("accuracy", "Bayes-error bounds (1-NN) against the model error", "bar", {
        "x_label": "error rate",
        "y_label": "corpus: quantity",
        "labels": labels,
        "values": values,
    })


def build_section(ctx: DemoContext, card: KPICard) -> None:
    """Add the Bayes-error table of the corpora and the digits CNN's gap to Bayes."""
    n_bootstrap = 200 if ctx.config.quick else 1000
    seed = ctx.config.seed
    data = ctx.data
    images = torch.cat([data.train_images, data.test_images])
    labels = torch.cat([data.train_labels, data.test_labels])
    test_logits = predict_logits(ctx.model, data.test_images)
    cnn_error = float((test_logits.argmax(dim=1) != data.test_labels).double().mean())
    with torch.no_grad():
        test_embeddings = ctx.model.features(data.test_images)

    rows = []
    # Short corpus name, as the figure's bar labels show it -> (1-NN bounds, model error).
    bounds: dict[str, tuple[BayesErrorResult, float]] = {}
    row, knn = _row("digits, raw pixels (all)", images.flatten(1), labels, cnn_error,
                    n_bootstrap, seed)
    rows.append(row)
    bounds["digits pixels"] = (knn, cnn_error)
    row, knn = _row("digits, CNN embeddings (test split)", test_embeddings, data.test_labels,
                    cnn_error, n_bootstrap, seed)
    rows.append(row)
    bounds["digits CNN features"] = (knn, cnn_error)
    for name, loader in (("iris", load_iris), ("wine", load_wine),
                         ("breast cancer", load_breast_cancer)):
        values, targets = loader(return_X_y=True)
        error = _cross_validated_error(values, targets, seed)
        row, knn = _row(name, _standardized(values), torch.as_tensor(targets), error,
                        n_bootstrap, seed)
        rows.append(row)
        bounds[name] = (knn, error)
    card.add_table(
        "accuracy", "Bayes error of the scikit-learn corpora against a model's error", COLUMNS,
        rows,
        note=("Bounds L .. U hold asymptotically (Cover-Hart for 1-NN; generalized Henze-Penrose "
              "for the minimum spanning tree); the interval is a percentile bootstrap of the "
              "0/1 values with neighbours and tree fixed. Small tables use z-scored features. "
              "Model: the demo CNN's test error for digits, a logistic regression's 5-fold "
              "cross-validated error for iris, wine and breast cancer. Gap = model error minus "
              "the bound, so a gap below 0 means the model beats the asymptotic upper bound."),
    )
    _add_bounds_figure(card, bounds)

    pixels = bayes_error(images.flatten(1), labels, num_classes=data.num_classes,
                         n_bootstrap=0)
    gap = GapToBayes(num_classes=data.num_classes, bayes_error=pixels, reference="upper")
    gap.update(test_logits, data.test_labels)
    card.add_metric(
        "gap_to_bayes_digits", gap, gap.compute(),
        description=("CNN test error minus the 1-NN upper bound of the digits' Bayes error "
                     "(raw pixels), the smallest gap the bounds allow"),
    )
