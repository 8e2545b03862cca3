"""edgekit devices: the audio input devices PortAudio sees, with their default rates."""

from __future__ import annotations

import json

HELP = "list audio input devices (index, name, channels, default sample rate)"


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list")


def run(args) -> int:
    from edgekit.audio.sources import list_devices
    from edgekit.errors import AudioError

    try:
        devices = list_devices()
    except OSError as exc:  # PortAudio library missing
        raise AudioError(f"PortAudio is not available ({exc}); install libportaudio2") from None
    if args.json:
        print(json.dumps(devices, indent=2))
        return 0
    if not devices:
        print("no audio input devices found (is a microphone plugged in, or a sound server running?)")
        return 1
    for d in devices:
        print(f"{d['index']:3d}  {d['name']:<40} {d['channels']:2d} ch  {d['default_rate']} Hz  ({d['hostapi']})")
    return 0
