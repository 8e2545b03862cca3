"""Audio in: files (soundfile), resampling (soxr), microphone capture (sounddevice)."""
