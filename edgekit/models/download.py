"""HTTP downloads that resume: append to a ``.part`` file from where it stopped (Range requests),
with a progress bar, and errors that say whether to retry, resume or fetch the file elsewhere.

``entry`` is a zoo entry (its ``name`` and, when known, its ``size`` in bytes).
"""

from __future__ import annotations

import http.client
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from edgekit import __version__
from edgekit.errors import DownloadError

_CHUNK = 1 << 16
_TIMEOUT_S = 30


def _offline_hint(entry, url: str, why: str) -> DownloadError:
    return DownloadError(
        f"cannot download {entry.name} from {url} ({why}); no network? Fetch that file on "
        f"another machine and run `edgekit models pull {entry.name} --from FILE`"
    )


def fetch_all(entry, url: str, part: Path, have: int, progress: bool) -> None:
    complete = fetch(entry, url, part, have, progress)
    size = part.stat().st_size
    if complete is False or (complete is None and entry.size is not None and size < entry.size):
        total = f"{entry.size:,}" if entry.size else "?"
        raise DownloadError(f"the download of {entry.name} from {url} stopped at {size:,} of {total} "
                            f"bytes; run the same command again to resume from {part}")


def fetch(entry, url: str, part: Path, have: int, progress: bool,
           retried: bool = False) -> bool | None:
    """Append to ``part`` from byte ``have`` on (HTTP Range).

    Returns whether the response arrived whole (all of its Content-Length), or None where the
    server sent no length. A whole response of the wrong size is a wrong file, not a cut one.
    """
    headers = {"User-Agent": f"edgekit/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and not retried:  # the .part is not a prefix: start over
            return fetch(entry, url, part, 0, progress, retried=True)
        raise DownloadError(f"cannot download {entry.name} from {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _offline_hint(entry, url, str(exc.reason)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _offline_hint(entry, url, str(exc) or type(exc).__name__) from None

    with resp:
        status = getattr(resp, "status", None) or 200
        if have and status == 206:
            m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                if retried:
                    raise DownloadError(f"{url}: the server answered a resume with the wrong range")
                return fetch(entry, url, part, 0, progress, retried=True)
            mode = "ab"
        else:
            have, mode = 0, "wb"  # the server sent the whole file (no Range support)
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        total = entry.size or (have + expected if expected is not None else None)
        bar = _progress_bar(entry.name, total, have, progress)
        received = 0
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        block = resp.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        f.flush()
                        raise DownloadError(
                            f"the download of {entry.name} from {url} broke off after "
                            f"{part.stat().st_size} bytes ({type(exc).__name__}); run the same "
                            f"command again to resume from {part}"
                        ) from None
                    if not block:
                        break
                    f.write(block)
                    received += len(block)
                    bar.update(len(block))
        except OSError as exc:
            if isinstance(exc, DownloadError):
                raise
            raise DownloadError(f"cannot write {part} ({exc.strerror or exc})") from None
        finally:
            bar.close()
    return None if expected is None else received >= expected


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(name: str, total: int | None, initial: int, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a declared dependency; a bare install still downloads
        return _NoBar()
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=name, file=sys.stderr, mininterval=0.2, dynamic_ncols=True)
