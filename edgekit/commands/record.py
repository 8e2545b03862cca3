"""edgekit record: capture the room's background (16 kHz mono) for `edgekit calibrate`."""

from __future__ import annotations

import sys
import time

HELP = "record the microphone to a file (16 kHz mono), e.g. an hour of the room's background for calibrate"


def add_arguments(p) -> None:
    p.add_argument("--seconds", type=float, required=True, help="how long to record")
    p.add_argument("-o", "--output", required=True, help="file to write (.flac or .wav), written as it records")
    p.add_argument("--device", help="input device: part of its name, or its index (edgekit devices)")
    p.add_argument("--rate", type=int, help="capture rate (default: the device's); resampled to 16 kHz")


def run(args) -> int:
    import soundfile as sf

    from edgekit.audio.sources import MicSource
    from edgekit.errors import AudioError

    if not args.seconds > 0:
        raise AudioError("--seconds must be positive")
    device = int(args.device) if args.device and args.device.isdigit() else args.device
    fmt = "WAV" if args.output.lower().endswith(".wav") else "FLAC"
    want = int(args.seconds * 16000)
    got = 0
    src = MicSource(device, args.rate)
    src.start()  # no microphone: an error at once, said in plain words
    last = 0.0
    try:
        # Written block by block: an hour of audio never sits in memory, and a stopped recording
        # keeps what it had.
        with sf.SoundFile(args.output, "w", 16000, 1, subtype="PCM_16", format=fmt) as f:
            while got < want:
                block = src.read(timeout=0.5)
                if block is None:
                    break
                block = block[: want - got]
                if len(block):
                    f.write(block)
                    got += len(block)
                now = time.monotonic()
                if sys.stderr.isatty() and now - last > 1:
                    print(f"\rrecorded {got / 16000:.0f} / {args.seconds:.0f} s", end="", file=sys.stderr)
                    last = now
    except KeyboardInterrupt:
        pass
    finally:
        src.stop()
    print(f"\nwrote {args.output}: {got / 16000:.1f} s from {src.describe()}", file=sys.stderr)
    return 0
