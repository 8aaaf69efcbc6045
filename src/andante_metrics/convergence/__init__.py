"""Convergence KPIs: how a training curve reached its target and how stable it was."""

from andante_metrics.convergence.tracker import ConvergenceTracker, convergence_summary

__all__ = ["ConvergenceTracker", "convergence_summary"]
