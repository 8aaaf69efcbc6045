"""Integrations with training frameworks.

``andante_metrics.integrations.lightning`` holds :class:`KPICallback`; it is imported on demand
because it needs the optional ``lightning`` package.
"""
