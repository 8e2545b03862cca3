#!/usr/bin/env bash
# Run edgekit's correctness checks on aarch64 under qemu-user emulation and compare with this host.
#
#   sudo benchmarks/arm64/run.sh [--cpu cortex-a72|cortex-a76|max] [--result FILE] [--keep-mounts]
#
# Idempotent: the first run installs qemu-user-static, binfmt-support and debootstrap if missing,
# debootstraps an arm64 Debian bookworm chroot (~3-5 min, ~350 MB), downloads the aarch64 wheels
# and builds a venv in the chroot; later runs reuse all of that and only rebuild the edgekit wheel.
# Nothing is written into the repository except the result file
# (benchmarks/results/arm64-emulated-<UTC date>.json unless --result says otherwise).
#
# Environment:
#   EDGEKIT_ARM64_ROOT     work area outside the repo (default /var/tmp/edgekit-arm64):
#                          chroot/, wheels/, dist/, build/, out/
#   EDGEKIT_TEST_DATA      the shared data folder (default <repo>/../shared/data)
#   EDGEKIT_HOST_PYTHON    host interpreter with edgekit's deps (default <repo>/.venv/bin/python)
#   EDGEKIT_DEBIAN_MIRROR  debootstrap mirror (default: the host's apt mirror, else deb.debian.org)
#   EDGEKIT_ARM64_CPU      the CPU qemu emulates (QEMU_CPU; --cpu): cortex-a72 (Raspberry Pi 4,
#                          the default), cortex-a76 (Pi 5), max (every feature: dotprod, i8mm, SVE)
#
# Exit status: 0 when the fixed-point codes are bit-exact (on the same input samples) and the top-1
# labels agree up to near-ties (see compare.py), 1 when the comparison fails, 2 or more when the
# setup or a check run fails.
#
# Notes: timings under emulation mean nothing and are not reported. /sys is deliberately NOT
# mounted in the chroot: ai-edge-litert segfaults under qemu-user when it is.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ARM_ROOT=${EDGEKIT_ARM64_ROOT:-/var/tmp/edgekit-arm64}
DATA=${EDGEKIT_TEST_DATA:-$REPO/../shared/data}
HOST_PY=${EDGEKIT_HOST_PYTHON:-$REPO/.venv/bin/python}
SUITE=bookworm
PY_VERSION=3.11               # bookworm's python3
CHROOT_PACKAGES=python3,python3-venv,libsndfile1
RESULT=""
KEEP_MOUNTS=0
CPU=${EDGEKIT_ARM64_CPU:-cortex-a72}

while [ $# -gt 0 ]; do
    case "$1" in
        --result) RESULT=$2; shift 2 ;;
        --result=*) RESULT=${1#--result=}; shift ;;
        --cpu) CPU=$2; shift 2 ;;
        --cpu=*) CPU=${1#--cpu=}; shift ;;
        --keep-mounts) KEEP_MOUNTS=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

T0=$(date +%s)
log() { printf '[arm64 %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit "${2:-2}"; }

ARM_ROOT=$(realpath -m "$ARM_ROOT")
case "$ARM_ROOT/" in
    "$(realpath "$REPO")/"*) die "EDGEKIT_ARM64_ROOT=$ARM_ROOT lies inside the repository; put it outside (e.g. /var/tmp/edgekit-arm64)" ;;
esac
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount); run it with sudo"
[ "$(uname -m)" = x86_64 ] || log "warning: host is $(uname -m), not x86_64; the comparison is then $(uname -m) vs emulated aarch64"
[ -x "$HOST_PY" ] || die "no host python at $HOST_PY (set EDGEKIT_HOST_PYTHON)"
[ -d "$DATA/models" ] && [ -d "$DATA/audio" ] || die "shared data not found at $DATA (set EDGEKIT_TEST_DATA)"
DATA=$(cd "$DATA" && pwd)
mkdir -p "$ARM_ROOT"
CHROOT=$ARM_ROOT/chroot
WHEELS=$ARM_ROOT/wheels          # aarch64 wheels of the dependencies (cached)
DIST=$ARM_ROOT/dist              # the edgekit wheel (rebuilt every run)
OUT=$ARM_ROOT/out
[ -n "$RESULT" ] || RESULT=$REPO/benchmarks/results/arm64-emulated-$(date -u +%F).json

# ---------------------------------------------------------------- host tools
need_pkgs=()
command -v qemu-aarch64-static >/dev/null || need_pkgs+=(qemu-user-static)
command -v update-binfmts >/dev/null || need_pkgs+=(binfmt-support)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]} on the host"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# ---------------------------------------------------------------- binfmt_misc
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    log "mounting binfmt_misc"
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    log "registering qemu-aarch64 with binfmt_misc"
    update-binfmts --enable qemu-aarch64 2>/dev/null || update-binfmts --import qemu-aarch64
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "binfmt handler qemu-aarch64 is not enabled"
# Without the F (fix-binary) flag the kernel looks the interpreter up inside the chroot.
BINFMT_FLAGS=$(sed -n 's/^flags: //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)
QEMU_VERSION=$(qemu-aarch64-static --version | head -n1)
QEMU_CPUS=$(qemu-aarch64-static -cpu help 2>/dev/null | tail -n +2 | tr -s ' \n' ' ' || true)  # "help" exits 1
case " $QEMU_CPUS " in
    *" $CPU "*) ;;
    *) die "qemu-aarch64 cannot emulate CPU '$CPU'; it knows:$QEMU_CPUS" ;;
esac

# ---------------------------------------------------------------- mounts
MOUNTED=()
unmount_all() {
    local i
    for (( i=${#MOUNTED[@]}-1; i>=0; i-- )); do
        umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" || true
    done
    MOUNTED=()
}
cleanup() { [ "$KEEP_MOUNTS" = 1 ] || unmount_all; }
trap cleanup EXIT
trap 'exit 130' INT TERM
bind() {  # bind SRC DST [ro]
    mkdir -p "$2"
    MOUNTED+=("$2")  # also one left by --keep-mounts or an interrupted run: unmounted at exit
    if mountpoint -q "$2"; then return; fi
    mount --bind "$1" "$2"
    [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"
}
mounts_under() { findmnt -rn -o TARGET | awk -v p="$1/" 'index($0 "/", p) == 1'; }

# ---------------------------------------------------------------- chroot (once)
MARKER=$CHROOT/.edgekit-bootstrapped
if [ ! -f "$MARKER" ]; then
    if [ -e "$CHROOT" ]; then
        [ -z "$(mounts_under "$CHROOT")" ] || die "a half-built $CHROOT still has mounts; unmount them: $(mounts_under "$CHROOT" | tr '\n' ' ')"
        log "removing the unfinished chroot at $CHROOT"
        rm -rf --one-file-system "$CHROOT"
    fi
    MIRROR=${EDGEKIT_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    log "debootstrap --arch=arm64 $SUITE into $CHROOT from $MIRROR (a few minutes)"
    debootstrap --arch=arm64 --variant=minbase --include="$CHROOT_PACKAGES" \
        "$SUITE" "$CHROOT" "$MIRROR" > "$ARM_ROOT/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $ARM_ROOT/debootstrap.log"
    echo "$SUITE arm64 $CHROOT_PACKAGES" > "$MARKER"
fi
case "$BINFMT_FLAGS" in
    *F*) ;;
    *) cp -u "$(command -v qemu-aarch64-static)" "$CHROOT/usr/bin/" ;;
esac
CHROOT_PY=$(chroot "$CHROOT" /usr/bin/python3 -c 'import platform; print(platform.machine(), platform.python_version())') \
    || die "cannot run the chroot's python3 under qemu"
log "chroot python: $CHROOT_PY"
case "$CHROOT_PY" in
    "aarch64 $PY_VERSION".*) ;;
    *) die "expected aarch64 python $PY_VERSION in the chroot, got: $CHROOT_PY" ;;
esac

# ---------------------------------------------------------------- source snapshot
# A snapshot of the tree (tracked and untracked, not ignored, files) outside the repo: the wheel is
# built from it, the host check runs on it and the requirements come from its pyproject, so edits
# made in the tree meanwhile cannot make the two sides run different code.
mkdir -p "$WHEELS" "$DIST" "$OUT" "$ARM_ROOT/build"
SRC=$ARM_ROOT/build/src
rm -rf "$SRC" "$DIST"/*.whl
mkdir -p "$SRC"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z -co --exclude-standard) \
        | tar -C "$REPO" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$SRC" -xf -
else
    tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md edgekit systemd 2>/dev/null \
        | tar -C "$SRC" -xf -
fi
[ -f "$SRC/edgekit/__init__.py" ] && [ -f "$SRC/pyproject.toml" ] || die "could not snapshot the source into $SRC"

# ---------------------------------------------------------------- wheels (host side)
# edgekit's runtime dependencies as they apply on aarch64, pinned to the versions this host runs,
# so that the comparison is about the architecture and not about package versions.
REQS=$ARM_ROOT/build/requirements.txt
CONSTRAINTS=$ARM_ROOT/build/constraints.txt
"$HOST_PY" - "$SRC/pyproject.toml" "$REQS" "$CONSTRAINTS" <<'EOF'
import sys, tomllib
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:  # pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement

pyproject, reqs_path, cons_path = sys.argv[1:4]
deps = tomllib.load(open(pyproject, "rb"))["project"]["dependencies"]
env = {"platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux",
       "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "os_name": "posix"}
lines = []
for text in deps:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate(env):
        continue
    try:
        have = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        have = None
    lines.append(f"{req.name}=={have}" if have and req.specifier.contains(have, prereleases=True) else str(req.name) + str(req.specifier))
open(reqs_path, "w").write("\n".join(lines) + "\n")
# Transitive dependencies too: every installed distribution but edgekit itself and pip's tooling.
skip = {"edgekit", "pip", "setuptools", "wheel"}
pins = sorted({f"{d.metadata['Name'].lower()}=={d.version}" for d in metadata.distributions()
               if d.metadata["Name"] and d.metadata["Name"].lower() not in skip})
open(cons_path, "w").write("\n".join(pins) + "\n")
EOF
REQS_KEY=$(cat "$REQS" "$CONSTRAINTS" | sha256sum | cut -c1-16)
if [ "$(cat "$WHEELS/.key" 2>/dev/null)" != "$REQS_KEY" ]; then
    log "downloading aarch64 cp311 wheels: $(tr '\n' ' ' < "$REQS")"
    rm -f "$WHEELS"/*.whl "$WHEELS/.key"
    platforms=()
    for p in manylinux_2_36 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 \
             manylinux_2_26 manylinux_2_24 manylinux_2_17 manylinux2014; do
        platforms+=(--platform "${p}_aarch64")
    done
    # (the grep drops pip's noise about find-links/extra-index folders a local pip.conf may name)
    "$HOST_PY" -m pip download -q --disable-pip-version-check --only-binary=:all: \
        "${platforms[@]}" --python-version "$PY_VERSION" --implementation cp \
        -d "$WHEELS" -r "$REQS" -c "$CONSTRAINTS" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; } \
        || die "pip download of the aarch64 wheels failed"
    echo "$REQS_KEY" > "$WHEELS/.key"
fi

# The edgekit wheel. Where the tree cannot build one right now (someone is mid-edit), the package
# source is copied in instead and the result says so.
log "building the edgekit wheel"
if "$HOST_PY" -m pip wheel -q --disable-pip-version-check --no-deps -w "$DIST" "$SRC" > "$ARM_ROOT/build/wheel.log" 2>&1; then
    INSTALL="wheel $(cd "$DIST" && ls edgekit-*.whl)"
else
    why=$(grep -m1 -E '^ *error:' "$ARM_ROOT/build/wheel.log" | sed 's/^ *//' || true)
    log "warning: the edgekit wheel does not build (${why:-see $ARM_ROOT/build/wheel.log}); copying the package source instead"
    INSTALL="source copy (the wheel did not build: ${why:-see build/wheel.log})"
fi

# ---------------------------------------------------------------- venv in the chroot
if mountpoint -q "$CHROOT/sys"; then
    log "unmounting $CHROOT/sys (ai-edge-litert segfaults under qemu when /sys is there)"
    umount "$CHROOT/sys" || umount -l "$CHROOT/sys"
fi
mkdir -p "$CHROOT/proc"
MOUNTED+=("$CHROOT/proc")
mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
bind /dev "$CHROOT/dev"
bind "$WHEELS" "$CHROOT/opt/wheels" ro
bind "$DIST" "$CHROOT/opt/dist" ro
bind "$DATA" "$CHROOT/opt/data" ro

# A clean environment; QEMU_CPU reaches qemu through it (binfmt_misc hands it the same envp).
in_chroot() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 QEMU_CPU="$CPU" chroot "$CHROOT" "$@"; }

VENV_KEY="$REQS_KEY $CHROOT_PY"
PIP=(in_chroot /opt/venv/bin/pip --disable-pip-version-check)
if [ "$(cat "$CHROOT/opt/venv/.edgekit-key" 2>/dev/null)" != "$VENV_KEY" ]; then
    log "creating /opt/venv in the chroot and installing the aarch64 wheels (--no-index; slow under qemu)"
    rm -rf "$CHROOT/opt/venv"
    cp "$REQS" "$CHROOT/opt/requirements.txt"
    in_chroot python3 -m venv /opt/venv
    "${PIP[@]}" install -q --no-index --find-links /opt/wheels -r /opt/requirements.txt \
        || die "pip install of the dependencies in the chroot failed"
    echo "$VENV_KEY" > "$CHROOT/opt/venv/.edgekit-key"
fi
rm -rf "$CHROOT/opt/src"
if [ "${INSTALL%% *}" = wheel ]; then
    log "installing the edgekit wheel in the chroot venv"
    "${PIP[@]}" install -q --no-index --no-deps --force-reinstall --find-links /opt/dist edgekit \
        || die "pip install of the edgekit wheel in the chroot failed"
    "${PIP[@]}" check >/dev/null || die "the chroot venv misses dependencies of the edgekit wheel: $("${PIP[@]}" check | head -n3)"
    CHROOT_PYTHONPATH=
else
    "${PIP[@]}" uninstall -q -y edgekit >/dev/null 2>&1 || true
    mkdir -p "$CHROOT/opt/src"
    cp -r "$SRC/edgekit" "$CHROOT/opt/src/"
    CHROOT_PYTHONPATH=/opt/src
fi

# ---------------------------------------------------------------- run the checks
mkdir -p "$CHROOT/opt/check" "$ARM_ROOT/build/check"
cp "$HERE/check.py" "$CHROOT/opt/check/check.py"
cp "$HERE/check.py" "$ARM_ROOT/build/check/check.py"  # outside the tree: imports edgekit from $SRC
rm -rf "$OUT/host" "$OUT/host.json" "$OUT/arm64.json" "$CHROOT/opt/out"
mkdir -p "$CHROOT/opt/out"

log "check.py on the host ($(uname -m))"
PYTHONPATH=$SRC "$HOST_PY" "$ARM_ROOT/build/check/check.py" --data "$DATA" --dump "$OUT/host" --out "$OUT/host.json" \
    || die "check.py failed on the host" 3
# The host's decoded samples go in too: where the chroot decodes/resamples a clip differently,
# check.py repeats that clip's checks on the host's samples (identical input, see compare.py).
cp -r "$OUT/host" "$CHROOT/opt/out/host-pcm"
log "check.py in the arm64 chroot (qemu-user, -cpu $CPU; slow)"
in_chroot env PYTHONPATH="$CHROOT_PYTHONPATH" /opt/venv/bin/python /opt/check/check.py --data /opt/data --dump /opt/out/arm64 \
    --reference-pcm /opt/out/host-pcm --out /opt/out/arm64.json \
    || die "check.py failed in the arm64 chroot (exit $?)" 3
cp "$CHROOT/opt/out/arm64.json" "$OUT/arm64.json"

log "comparing"
mkdir -p "$(dirname "$RESULT")"
status=0
"$HOST_PY" "$HERE/compare.py" "$OUT/host.json" "$OUT/arm64.json" \
    --dumps "$OUT/host" "$CHROOT/opt/out/arm64" \
    --emulator "$QEMU_VERSION, QEMU_CPU=$CPU (binfmt flags: ${BINFMT_FLAGS:-none})" \
    --chroot "Debian $SUITE arm64 (debootstrap --variant=minbase)" \
    --install "$INSTALL" \
    --out "$RESULT" || status=$?
log "done (exit $status); result in $RESULT"
exit "$status"
