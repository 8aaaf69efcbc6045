"""The demo: the main job that trains on the digits and writes a KPI card of every area."""

from andante_metrics.demo.runner import DemoConfig, DemoContext, run_demo

__all__ = ["DemoConfig", "DemoContext", "run_demo"]
