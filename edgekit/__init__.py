"""edgekit: sound-event detection on a Raspberry Pi, on the CPU or a Coral Edge TPU."""

__version__ = "0.1.0"
