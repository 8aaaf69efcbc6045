"""Conformance cases of the Bayes-error estimators and the gap to Bayes."""

from __future__ import annotations

import torch

from andante_metrics import BayesErrorEstimator, GapToBayes

from conformance.harness import BadInput, MetricCase, classification_batches, factory, register

C = 3
SIZES = (9, 16, 6, 12, 7)


def _feature_batches(gen: torch.Generator):
    """Three Gaussian classes in 4-D; every batch has at least k + 1 = 4 samples."""
    out = []
    for size in SIZES:
        labels = torch.randint(0, C, (size,), generator=gen)
        features = torch.randn(size, 4, generator=gen)
        features[:, 0] += 1.5 * labels
        out.append((features, labels))
    return out


def _probability_batches(gen: torch.Generator):
    return [(logits.softmax(dim=1), labels)
            for logits, labels in classification_batches(C, sizes=SIZES)(gen)]


def _feature_bad_inputs() -> list[BadInput]:
    features = torch.randn(5, 4)
    labels = torch.zeros(5, dtype=torch.long)
    return [
        BadInput("shape_mismatch", (features, torch.zeros(4, dtype=torch.long)), ValueError,
                 r"`features` and `labels` must hold the same number of samples.*\(5, 4\)"),
        BadInput("one_dim_features", (torch.randn(5), labels), ValueError,
                 r"`features` must have 2 dimensions, got shape \(5,\)"),
        BadInput("int_features", (torch.zeros(5, 4, dtype=torch.long), labels), TypeError,
                 r"`features` must be a floating-point tensor.*torch.int64"),
        BadInput("float_labels", (features, torch.zeros(5)), TypeError,
                 r"`labels` must be an integer tensor.*torch.float32"),
        BadInput("inf_features", (torch.full((5, 4), float("inf")), labels), ValueError,
                 r"`features` contains 20 NaN or infinite"),
        BadInput("label_out_of_range", (features, torch.tensor([0, 1, 2, 3, 0])), ValueError,
                 r"`labels` must hold class indices in \[0, 2\].*got 3"),
        BadInput("bad_method", construct={"method": "parzen"}, error=ValueError,
                 match=r"`method` must be one of 'knn', 'ghp', 'soft_label', got 'parzen'"),
        BadInput("zero_k", construct={"k": 0}, error=ValueError,
                 match=r"`k` must be at least 1, got 0"),
        BadInput("negative_bootstrap", construct={"n_bootstrap": -1}, error=ValueError,
                 match=r"`n_bootstrap` must be at least 0, got -1"),
        BadInput("zero_chunk", construct={"chunk_size": 0}, error=ValueError,
                 match=r"`chunk_size` must be at least 1, got 0"),
        BadInput("bad_confidence", construct={"confidence": 1.0}, error=ValueError,
                 match=r"`confidence` must be a float strictly between 0 and 1, got 1.0"),
        BadInput("num_classes_too_small", construct={"num_classes": 1}, error=ValueError,
                 match=r"`num_classes` must be at least 2, got 1"),
    ]


register(
    MetricCase("bayes_knn_k1", factory(BayesErrorEstimator, num_classes=C, n_bootstrap=50),
               _feature_batches, _feature_bad_inputs()),
    MetricCase("bayes_knn_k3_chunked",
               factory(BayesErrorEstimator, num_classes=C, k=3, chunk_size=5, n_bootstrap=50),
               _feature_batches, _feature_bad_inputs()),
    MetricCase("bayes_ghp",
               factory(BayesErrorEstimator, num_classes=C, method="ghp", n_bootstrap=50),
               _feature_batches, _feature_bad_inputs()),
    MetricCase("bayes_soft_label",
               factory(BayesErrorEstimator, num_classes=C, method="soft_label", n_bootstrap=50),
               _probability_batches, [
                   BadInput("logits_as_probs", (torch.randn(5, C) * 5,
                                                torch.zeros(5, dtype=torch.long)),
                            ValueError, r"`features` must hold probabilities in \[0, 1\]"),
                   BadInput("rows_not_normalised", (torch.full((5, C), 0.5),
                                                    torch.zeros(5, dtype=torch.long)),
                            ValueError, r"`features` rows must sum to 1.*off by 0.5"),
                   BadInput("wrong_columns", (torch.full((5, 2), 0.5),
                                              torch.zeros(5, dtype=torch.long)),
                            ValueError, r"`features` must hold \(N, num_classes=3\)"),
               ]),
    MetricCase("bayes_gap", factory(GapToBayes, num_classes=C, bayes_error=0.1),
               classification_batches(C), [
                   BadInput("wrong_num_classes", (torch.randn(5, C + 1),
                                                  torch.zeros(5, dtype=torch.long)),
                            ValueError, r"`preds` must have num_classes=3 columns"),
                   BadInput("nan_preds", (torch.full((5, C), float("nan")),
                                          torch.zeros(5, dtype=torch.long)),
                            ValueError, r"`preds` contains 15 NaN or infinite"),
                   BadInput("bayes_above_one", construct={"bayes_error": 1.5}, error=ValueError,
                            match=r"`bayes_error` must lie in \[0, 1\], got 1.5"),
                   BadInput("bad_reference", construct={"reference": "median"},
                            error=ValueError,
                            match=r"`reference` must be one of 'estimate', 'lower', 'upper'"),
               ]),
)
