"""Measurements of models and devices: MACs and parameters from the graph (``macs``), latency."""
