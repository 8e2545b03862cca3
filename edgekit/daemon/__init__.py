"""The daemon: config schema and frozen settings, the service loop, sd_notify, service install."""
