"""Speech privacy: whether people talk in a clip, from YAMNet's own speech classes.

A clip is withheld (its event kept, its audio not) when any of YAMNet's scores for the classes
below reaches :data:`SPEECH_THRESHOLD` in a window that overlaps the clip. Singing and rapping
are not in the list: the words in a song on the radio are not a private conversation.

The threshold is measured, not guessed (``benchmarks/speech_privacy.py`` on
``../shared/data/events``): the highest speech score of each speech clip against each clip of
20 non-speech backgrounds (results in ``benchmarks/README.md``). It sits well below what speech
scores, so a quiet or distant voice is still caught, and above what most backgrounds reach: a
clip wrongly withheld costs a recording, a voice wrongly kept costs someone's privacy.
"""

from __future__ import annotations

from collections.abc import Sequence

SPEECH_LABELS = (
    "Speech", "Child speech, kid speaking", "Conversation", "Narration, monologue", "Babbling",
    "Speech synthesizer", "Shout", "Yell", "Children shouting", "Whispering",
    "Hubbub, speech noise, speech babble",
    # Not in YAMNet's 521 but in AudioSet's ontology: kept so a model that has them uses them.
    "Male speech, man speaking", "Female speech, woman speaking",
)
SPEECH_THRESHOLD = 0.3


def speech_indices(labels: Sequence[str]) -> list[int]:
    wanted = {name.casefold() for name in SPEECH_LABELS}
    return [i for i, name in enumerate(labels) if name.casefold() in wanted]


def listens_for_speech(rule) -> bool:
    """A rule that fires on speech would keep nothing but speech: it keeps no clips by default."""
    wanted = {name.casefold() for name in SPEECH_LABELS}
    return any(name.casefold() in wanted for name in rule.labels)
