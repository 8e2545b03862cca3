"""Measurements of models and devices: latency, throughput and the pipeline, with the machine they ran on."""
