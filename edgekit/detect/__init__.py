"""Scores to events: the detector, its rules and events."""
