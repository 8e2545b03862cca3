"""Speech privacy: whether people talk in a clip, from YAMNet's own speech classes.

A clip is withheld (its event kept, its audio not) when any of YAMNet's scores for the classes
below reaches :data:`SPEECH_THRESHOLD` in a window that overlaps the clip. Singing and rapping
are not in the list: the words in a song on the radio are not a private conversation.

The threshold is measured, not guessed (``benchmarks/speech_privacy.py`` on
``../shared/data/events``, ``benchmarks/results/speech-privacy-2026-12-03.txt``): per clip the
highest speech score over its windows. At 0.3: 100 % of 103 speech recordings are caught, 96 %
of them mixed as loud as a background noise and 77 % at 10 dB below it; 2.4 % of 463 non-speech
backgrounds and 10 % of 1215 ESC-50 event clips are withheld (mostly human sounds: laughing,
sneezing, coughing). 0.5 would withhold 6 % of events but catch only 59 % of the quieter voices;
0.2 catches 88 % of those and withholds 16 % of events. A clip wrongly withheld costs a
recording; a voice wrongly kept costs someone's privacy.
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
