"""Generative KPIs: how close two distributions of samples are.

FID and KID compare feature distributions, by default those of the FID Inception v3 network
loaded from a local weights file. The KDE log-likelihood and the kNN KL divergence estimate
work on any feature vectors.
"""

from andante_metrics.generative.density import (
    KDELogLikelihood,
    KLDivergence,
    kde_bandwidth_factor,
    kde_log_likelihood,
    kl_divergence_knn,
)
from andante_metrics.generative.features import extract_features
from andante_metrics.generative.frechet import (
    FID,
    frechet_distance,
    load_fid_statistics,
    save_fid_statistics,
)
from andante_metrics.generative.inception import (
    FIDInceptionV3,
    find_inception_weights,
    preprocess_images,
)
from andante_metrics.generative.kid import KID, kernel_inception_distance

__all__ = [
    "FID",
    "FIDInceptionV3",
    "KDELogLikelihood",
    "KID",
    "KLDivergence",
    "extract_features",
    "find_inception_weights",
    "frechet_distance",
    "kde_bandwidth_factor",
    "kde_log_likelihood",
    "kernel_inception_distance",
    "kl_divergence_knn",
    "load_fid_statistics",
    "preprocess_images",
    "save_fid_statistics",
]
