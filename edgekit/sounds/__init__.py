"""Custom sounds: small heads on YAMNet's embedding, learned from a few clips (``edgekit sounds``).

Learning lives here; the sound itself (file format, scoring, where sounds are stored) lives in
:mod:`edgekit.detect.heads` and :mod:`edgekit.detect.sound_store`, where the detector and the
daemon can use it: ``load_sound(name)`` gives a :class:`Sound` with ``.threshold``, ``.release``,
``.score(window_result)`` and ``.check_model(model)``.
"""

from ..detect.heads import Sound
from ..detect.sound_file import load_sound_file
from ..detect.sound_store import find_sound, list_sounds, load_sound, sound_dirs

__all__ = ["Sound", "find_sound", "list_sounds", "load_sound", "load_sound_file", "sound_dirs"]
