"""How well it hears: annotations, event metrics, soundscapes, replaying the daemon's path, calibration."""
