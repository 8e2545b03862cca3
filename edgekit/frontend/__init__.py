"""Waveform -> log-mel patches: float reference, fixed-point path, streaming state."""
