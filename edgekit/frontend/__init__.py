"""Waveform -> log-mel patches: the float path (reference), the fixed-point path (fixed), the exact
integer spectrum they rest on (spectrum, tables) and streaming state (stream)."""
