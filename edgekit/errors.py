"""One error tree for the whole kit.

Every error a user can cause derives from :class:`EdgekitError` and also from the builtin it
resembles, so callers may catch either. The CLI prints ``str(err)`` on one line and exits
non-zero; messages therefore say what went wrong *and* what to do about it.
"""

from __future__ import annotations


class EdgekitError(Exception):
    """Root of every error the kit raises on purpose."""


class ConfigError(EdgekitError, ValueError):
    """A bad option or config value."""


class ModelError(EdgekitError):
    """Anything wrong with getting or using a model."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model name or path that leads nowhere."""


class ModelFileError(ModelError, ValueError):
    """A file that is not a usable .tflite model (corrupt, truncated, LFS pointer, ...)."""


class UnsupportedModelError(ModelError, ValueError):
    """A valid model this kit cannot drive (wrong input shape, unknown input kind)."""


class DownloadError(ModelError, OSError):
    """A zoo model that cannot be fetched or stored: no network, HTTP error, unwritable cache."""


class ChecksumError(ModelError, ValueError):
    """A downloaded or imported file whose SHA-256 is not the one the zoo manifest pins."""


class RuntimeNotFoundError(EdgekitError, ImportError):
    """Neither LiteRT nor tflite-runtime is importable."""


class ExtraNotInstalledError(EdgekitError, ImportError):
    """A feature needs an optional extra (bench, build, pi) that is not installed; the message names it."""


class DeviceError(EdgekitError, ValueError):
    """A bad device string."""


class EdgeTPUError(EdgekitError, RuntimeError):
    """The Edge TPU cannot be used: no library, no device, permissions, version mismatch."""


class EdgeTPUCompilerError(EdgeTPUError):
    """``edgetpu_compiler`` is not installed, or it failed on a model."""


class AudioError(EdgekitError):
    """Anything wrong with audio input."""


class AudioFileError(AudioError, ValueError):
    """An audio file that cannot be read or holds nothing usable."""


class LabelsError(EdgekitError, ValueError):
    """A label file that cannot be read or does not fit the model."""


class SoundError(EdgekitError, ValueError):
    """A custom sound that cannot be used: a bad name, a corrupted or edited file, a bad example."""


class SoundNotFoundError(SoundError, LookupError):
    """A custom sound name found in none of the sound directories."""


class SoundModelMismatchError(SoundError):
    """A custom sound learned on another model than the one in use (their hashes differ)."""


class ExamplesError(SoundError):
    """Example recordings a sound cannot be learned from: silent, too short, like the background."""


class AnnotationError(EdgekitError, ValueError):
    """An annotation file that cannot be read at all (single bad rows are reported, not raised)."""


class EvaluationError(EdgekitError, ValueError):
    """Nothing left to evaluate, or an evaluation option that cannot work (a bad --map)."""


class CalibrationError(EdgekitError, ValueError):
    """Calibration data that cannot support the requested claim (too little background)."""


class BackgroundError(CalibrationError):
    """Too little audible background for a false-alarm budget (calibrate and sounds learn alike)."""


class ActionError(EdgekitError):
    """An action (GPIO, MQTT, event log) that cannot be set up."""


class GpioError(ActionError, RuntimeError):
    """No usable GPIO pin factory, or a pin that cannot be claimed."""


class PinFactoryError(GpioError):
    """No GPIO pin factory works here (no GPIO chip, lgpio missing, an unknown factory name): set-up
    or configuration, which a restart does not fix (``edgekit run`` exits 78)."""


class MqttError(ActionError, ValueError):
    """MQTT settings that cannot work: unreadable TLS files, wildcards in topic parts, a bad port.

    Network trouble is never an exception: it shows in the action's status and log.
    """


class EventLogError(ActionError, OSError):
    """An event log path that cannot be created or written."""


class CommandError(EdgekitError, ValueError):
    """A command from the broker that is refused (bad JSON, unknown rule, bad duration...); nothing changes."""


class EdgekitWarning(UserWarning):
    """A degraded but working mode (for example Edge TPU missing, running on the CPU)."""


class FallbackWarning(EdgekitWarning):
    """The requested device could not be used and another one was taken instead."""
