"""Custom sounds: small heads on YAMNet's embedding, learned from a few clips (``edgekit sounds``).

For the detector and the daemon: ``load_sound(name)`` gives a :class:`Sound` with ``.threshold``,
``.release``, ``.score(window_result)`` and ``.check_model(model)``.
"""

from .sound import Sound, load_sound_file
from .store import find_sound, list_sounds, load_sound, sound_dirs

__all__ = ["Sound", "find_sound", "list_sounds", "load_sound", "load_sound_file", "sound_dirs"]
