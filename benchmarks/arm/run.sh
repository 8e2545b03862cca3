#!/usr/bin/env bash
# Run edgekit's correctness checks on emulated Raspberry Pi userlands (qemu-user) and compare with
# this host.
#
#   sudo benchmarks/arm/run.sh [--arch aarch64|armv7l|both] [--cpu CPU] [--frontend-only]
#                              [--result FILE] [--keep-mounts]
#
#   aarch64  64-bit Pi OS: Debian bookworm arm64, ai-edge-litert and numpy 2 from PyPI's aarch64
#            wheels (pinned to the host's versions), XNNPACK expected and required.
#   armv7l   32-bit Pi OS: Debian bookworm armhf, a venv with --system-site-packages over Debian's
#            python3-numpy (1.24, i.e. numpy<2), python3-cffi and python3-soundfile, and
#            tflite-runtime 2.14's armv7l wheel from PyPI. soxr has no armv7l wheel on PyPI nor a
#            Debian package (a Pi gets it from piwheels): the check runs on the host's decoded
#            16 kHz samples instead (--reference-pcm), so it needs no resampler.
#   both     (the default) one after the other; the exit status is the worse of the two.
#
# Both roots see a Pi's CPU: a minimal /sys/devices/system/cpu/{possible,present,online} and a
# Pi 4 (Cortex-A72) or Pi 5 (Cortex-A76) /proc/cpuinfo are bind-mounted in, so that cpuinfo
# parses and XNNPACK can load as it does on the board.
#
# Idempotent: the first run installs qemu-user-static, binfmt-support and debootstrap if missing
# and debootstraps the root (a few minutes each); later runs reuse the root, its wheels and venv
# and only reinstall edgekit. Nothing is written into the repository but the result file
# (benchmarks/results/arm-emulated-<arch>-<UTC date>.json unless --result says otherwise; with
# --arch both, --result is a folder).
#
# Options:
#   --cpu CPU          what qemu emulates (QEMU_CPU). aarch64: cortex-a72 (Pi 4, the default),
#                      cortex-a76 (Pi 5), max. armv7l: cortex-a15 (the default: ARMv7 with NEON,
#                      VFPv4 and integer divide, as the Pi's 32-bit kernel reports it), max.
#   --frontend-only    only the fixed-point front end (tables, golden codes, every clip's codes):
#                      no models: under a minute under emulation once the root is cached.
#   --keep-mounts      leave the chroot's mounts in place (for poking around)
#   --no-pi-cpu        mount neither the Pi's /sys nor its cpuinfo (the old set-up): cpuinfo fails,
#                      XNNPACK drops out, and on aarch64 the check fails saying so
#
# Environment:
#   EDGEKIT_ARM_ROOT       work area outside the repo (default /var/tmp/edgekit-arm), one folder
#                          per architecture: chroot/, wheels/, dist/, build/, out/, pi/
#   EDGEKIT_TEST_DATA      the shared data folder (default <repo>/../shared/data)
#   EDGEKIT_HOST_PYTHON    host interpreter with edgekit's deps (default <repo>/.venv/bin/python)
#   EDGEKIT_DEBIAN_MIRROR  debootstrap mirror (default: the host's apt mirror, else deb.debian.org)
#
# Exit status: 0 when the comparison passed (see compare.py), 1 when it failed, 2 when the setup
# failed, 3 when check.py failed (crashed) on either side, 4 when this machine cannot run ARM
# binaries at all (binfmt_misc cannot be mounted or enabled: an unprivileged container).
#
# Timings under emulation mean nothing and are not reported by the checks; the script logs its
# own wall time per stage.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ARM_BASE=${EDGEKIT_ARM_ROOT:-/var/tmp/edgekit-arm}
DATA=${EDGEKIT_TEST_DATA:-$REPO/../shared/data}
HOST_PY=${EDGEKIT_HOST_PYTHON:-$REPO/.venv/bin/python}
SUITE=bookworm
PY_VERSION=3.11               # bookworm's python3
ARCH=both
CPU=""
RESULT=""
KEEP_MOUNTS=0
FRONTEND_ONLY=0
PI_CPU=1
PASS_ON=()

while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=$2; shift 2 ;;
        --arch=*) ARCH=${1#--arch=}; shift ;;
        --result) RESULT=$2; shift 2 ;;
        --result=*) RESULT=${1#--result=}; shift ;;
        --cpu) CPU=$2; PASS_ON+=(--cpu "$2"); shift 2 ;;
        --cpu=*) CPU=${1#--cpu=}; PASS_ON+=(--cpu "$CPU"); shift ;;
        --frontend-only) FRONTEND_ONLY=1; PASS_ON+=(--frontend-only); shift ;;
        --keep-mounts) KEEP_MOUNTS=1; PASS_ON+=(--keep-mounts); shift ;;
        --no-pi-cpu) PI_CPU=0; PASS_ON+=(--no-pi-cpu); shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { printf 'run.sh: %s\n' "$*" >&2; exit "${2:-2}"; }

ARM_BASE=$(realpath -m "$ARM_BASE")
case "$ARM_BASE/" in
    "$(realpath "$REPO")/"*) die "EDGEKIT_ARM_ROOT=$ARM_BASE lies inside the repository; put it outside (e.g. /var/tmp/edgekit-arm)" ;;
esac

if [ "$ARCH" = both ]; then
    [ -z "$CPU" ] || die "--cpu names one architecture's CPU: use it with --arch aarch64 or --arch armv7l"
    worst=0
    for a in aarch64 armv7l; do
        rc=0
        "$0" --arch "$a" ${RESULT:+--result "$RESULT/arm-emulated-$a-$(date -u +%F).json"} "${PASS_ON[@]}" || rc=$?
        [ "$rc" -le "$worst" ] || worst=$rc
    done
    exit "$worst"
fi

case "$ARCH" in
    aarch64) DEBARCH=arm64; QEMU=qemu-aarch64; CPU=${CPU:-cortex-a72}; EXPECT_XNNPACK=yes
             CHROOT_PACKAGES=python3,python3-venv,libsndfile1 ;;
    armv7l)  DEBARCH=armhf; QEMU=qemu-arm; CPU=${CPU:-cortex-a15}; EXPECT_XNNPACK=no
             # numpy<2, cffi and soundfile from Debian: PyPI has no armv7l wheels of them.
             # (python3-ply: debootstrap does not resolve the virtual python3-ply-lex-3.10 that pycparser needs)
             CHROOT_PACKAGES=python3,python3-venv,libsndfile1,python3-numpy,python3-cffi,python3-soundfile,python3-ply ;;
    *) die "--arch must be aarch64, armv7l or both, not '$ARCH'" ;;
esac

T0=$(date +%s)
log() { printf '[%s %4ss] %s\n' "$ARCH" "$(( $(date +%s) - T0 ))" "$*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount); run it with sudo"
[ "$(uname -m)" = x86_64 ] || log "warning: host is $(uname -m), not x86_64; the comparison is then $(uname -m) vs emulated $ARCH"
[ -x "$HOST_PY" ] || die "no host python at $HOST_PY (set EDGEKIT_HOST_PYTHON)"
[ -d "$DATA/models" ] && [ -d "$DATA/audio" ] || die "shared data not found at $DATA (set EDGEKIT_TEST_DATA)"
DATA=$(cd "$DATA" && pwd)
ARM_ROOT=$ARM_BASE/$ARCH
mkdir -p "$ARM_ROOT"
# One run per root at a time (two test sessions on one machine would tread on each other's mounts).
exec 9>"$ARM_ROOT/.lock"
flock -w 1800 9 || die "another run.sh has held $ARM_ROOT/.lock for 30 minutes"
CHROOT=$ARM_ROOT/chroot
WHEELS=$ARM_ROOT/wheels          # the dependencies' wheels for this architecture (cached)
DIST=$ARM_ROOT/dist              # the edgekit wheel (rebuilt every run)
OUT=$ARM_ROOT/out
PI=$ARM_ROOT/pi                  # the Pi's /sys and /proc/cpuinfo, bind-mounted into the chroot
[ -n "$RESULT" ] || RESULT=$REPO/benchmarks/results/arm-emulated-$ARCH-$(date -u +%F).json

# ---------------------------------------------------------------- host tools
need_pkgs=()
command -v "$QEMU-static" >/dev/null || need_pkgs+=(qemu-user-static)
command -v update-binfmts >/dev/null || need_pkgs+=(binfmt-support)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]} on the host"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# ---------------------------------------------------------------- binfmt_misc
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    log "mounting binfmt_misc"
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
        || die "cannot mount binfmt_misc (an unprivileged container?): this machine cannot run ARM binaries under qemu-user" 4
fi
if [ ! -e "/proc/sys/fs/binfmt_misc/$QEMU" ]; then
    log "registering $QEMU with binfmt_misc"
    update-binfmts --enable "$QEMU" 2>/dev/null || update-binfmts --import "$QEMU"
fi
grep -qx enabled "/proc/sys/fs/binfmt_misc/$QEMU" || die "binfmt handler $QEMU is not enabled: this machine cannot run ARM binaries under qemu-user" 4
# Without the F (fix-binary) flag the kernel looks the interpreter up inside the chroot.
BINFMT_FLAGS=$(sed -n 's/^flags: //p' "/proc/sys/fs/binfmt_misc/$QEMU")
QEMU_VERSION=$("$QEMU-static" --version | head -n1)
QEMU_CPUS=$("$QEMU-static" -cpu help 2>/dev/null | tail -n +2 | tr -s ' \n' ' ' || true)  # "help" exits 1
case " $QEMU_CPUS " in
    *" $CPU "*) ;;
    *) die "$QEMU cannot emulate CPU '$CPU'; it knows:$QEMU_CPUS" ;;
esac

# ---------------------------------------------------------------- mounts
MOUNTED=()
unmount_all() {
    local i
    for (( i=${#MOUNTED[@]}-1; i>=0; i-- )); do
        umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
    MOUNTED=()
}
cleanup() { [ "$KEEP_MOUNTS" = 1 ] || unmount_all; }
trap cleanup EXIT
trap 'exit 130' INT TERM
bind() {  # bind SRC DST [ro]
    [ -d "$1" ] && mkdir -p "$2" || { mkdir -p "$(dirname "$2")"; [ -e "$2" ] || touch "$2"; }
    MOUNTED+=("$2")  # also one left by --keep-mounts or an interrupted run: unmounted at exit
    if mountpoint -q "$2"; then return; fi
    mount --bind "$1" "$2"
    [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"
}
mounts_under() { findmnt -rn -o TARGET | awk -v p="$1/" 'index($0 "/", p) == 1'; }

# ---------------------------------------------------------------- chroot (once)
MARKER=$CHROOT/.edgekit-bootstrapped
if [ "$(cat "$MARKER" 2>/dev/null)" != "$SUITE $DEBARCH $CHROOT_PACKAGES" ]; then
    if [ -e "$CHROOT" ]; then
        [ -z "$(mounts_under "$CHROOT")" ] || die "a half-built $CHROOT still has mounts; unmount them: $(mounts_under "$CHROOT" | tr '\n' ' ')"
        log "removing the unfinished or outdated chroot at $CHROOT"
        rm -rf --one-file-system "$CHROOT"
    fi
    MIRROR=${EDGEKIT_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    log "debootstrap --arch=$DEBARCH $SUITE into $CHROOT from $MIRROR (a few minutes)"
    debootstrap --arch="$DEBARCH" --variant=minbase --include="$CHROOT_PACKAGES" \
        "$SUITE" "$CHROOT" "$MIRROR" > "$ARM_ROOT/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $ARM_ROOT/debootstrap.log"
    echo "$SUITE $DEBARCH $CHROOT_PACKAGES" > "$MARKER"
    log "debootstrap done"
fi
case "$BINFMT_FLAGS" in
    *F*) ;;
    *) cp -u "$(command -v "$QEMU-static")" "$CHROOT/usr/bin/" ;;
esac

# ---------------------------------------------------------------- the Pi's CPU, as cpuinfo sees it
# XNNPACK asks pytorch/cpuinfo about the processor. Under qemu-user there is no /sys of the guest's
# own and /proc/cpuinfo describes the host: cpuinfo then fails ("failed to parse the list of
# possible processors") and the runtime silently drops XNNPACK for its built-in kernels. A Pi has
# 4 cores; its /proc/cpuinfo below is the board's own text (Pi 4: Cortex-A72, part 0xd08;
# Pi 5: Cortex-A76, part 0xd0b) for a 64-bit or a 32-bit kernel.
mkdir -p "$PI/sys/devices/system/cpu"
for f in possible present online; do echo 0-3 > "$PI/sys/devices/system/cpu/$f"; done
pi_cpuinfo() {  # pi_cpuinfo ARCH CPU
    local part=0xd08 variant=0x0 rev=3 board="Raspberry Pi 4 Model B Rev 1.4" hw=BCM2711 revision=d03114
    local features="fp asimd evtstrm crc32 cpuid"
    case "$2" in
        cortex-a76|max) part=0xd0b variant=0x4 rev=1 board="Raspberry Pi 5 Model B Rev 1.0" hw=BCM2712 revision=d04170
                        features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
    esac
    local i
    for i in 0 1 2 3; do
        if [ "$1" = aarch64 ]; then
            printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
                "$i" "$features" "$variant" "$part" "$rev"
        else
            printf 'processor\t: %d\nmodel name\t: ARMv7 Processor rev %s (v7l)\nBogoMIPS\t: 108.00\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\nCPU implementer\t: 0x41\nCPU architecture: 7\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
                "$i" "$rev" "$variant" "$part" "$rev"
        fi
    done
    printf 'Hardware\t: %s\nRevision\t: %s\nSerial\t\t: 10000000e1d2c3b4\nModel\t\t: %s\n' "$hw" "$revision" "$board"
}
pi_cpuinfo "$ARCH" "$CPU" > "$PI/cpuinfo"

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
# edgekit's runtime dependencies as they apply on this architecture, pinned to the versions this
# host runs where the host has them, so that the comparison is about the architecture and not
# about package versions. On armv7l numpy, cffi and soundfile are Debian's and soxr is absent;
# the rest is downloaded without dependencies (the wheels' own numpy pins would reach PyPI,
# which has no armv7l numpy).
REQS=$ARM_ROOT/build/requirements.txt
CONSTRAINTS=$ARM_ROOT/build/constraints.txt
"$HOST_PY" - "$SRC/pyproject.toml" "$REQS" "$CONSTRAINTS" "$ARCH" <<'EOF'
import sys, tomllib
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:  # pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement

pyproject, reqs_path, cons_path, arch = sys.argv[1:5]
deps = tomllib.load(open(pyproject, "rb"))["project"]["dependencies"]
env = {"platform_machine": arch, "sys_platform": "linux", "platform_system": "Linux",
       "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "os_name": "posix"}
from_debian = {"numpy", "soundfile", "cffi", "soxr"} if arch == "armv7l" else set()
extra = ["colorzero"] if arch == "armv7l" else []  # gpiozero's one pure-Python dependency
lines = []
for text in deps + extra:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate(env):
        continue
    if req.name.lower() in from_debian:
        continue
    try:
        have = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        have = None
    lines.append(f"{req.name}=={have}" if have and req.specifier.contains(have, prereleases=True) else str(req.name) + str(req.specifier))
open(reqs_path, "w").write("\n".join(lines) + "\n")
# Transitive dependencies too: every installed distribution but edgekit itself and pip's tooling.
skip = {"edgekit", "pip", "setuptools", "wheel"} | from_debian
pins = sorted({f"{d.metadata['Name'].lower()}=={d.version}" for d in metadata.distributions()
               if d.metadata["Name"] and d.metadata["Name"].lower() not in skip})
open(cons_path, "w").write("\n".join(pins) + "\n")
EOF
REQS_KEY=$(cat "$REQS" "$CONSTRAINTS" | sha256sum | cut -c1-16)
if [ "$(cat "$WHEELS/.key" 2>/dev/null)" != "$REQS_KEY" ]; then
    log "downloading $ARCH cp311 wheels: $(tr '\n' ' ' < "$REQS")"
    rm -f "$WHEELS"/*.whl "$WHEELS/.key"
    platforms=()
    for p in manylinux_2_36 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 \
             manylinux_2_26 manylinux_2_24 manylinux_2_17 manylinux2014; do
        platforms+=(--platform "${p}_$ARCH")
    done
    nodeps=()
    [ "$ARCH" != armv7l ] || nodeps=(--no-deps)
    # (the grep drops pip's noise about find-links/extra-index folders a local pip.conf may name)
    "$HOST_PY" -m pip download -q --disable-pip-version-check --only-binary=:all: "${nodeps[@]}" \
        "${platforms[@]}" --python-version "$PY_VERSION" --implementation cp \
        -d "$WHEELS" -r "$REQS" -c "$CONSTRAINTS" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; } \
        || die "pip download of the $ARCH wheels failed"
    ls "$WHEELS"/*.whl >/dev/null 2>&1 || die "pip download of the $ARCH wheels failed"
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

# ---------------------------------------------------------------- mounts in the chroot
mkdir -p "$CHROOT/proc"
MOUNTED+=("$CHROOT/proc")
mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
if [ "$PI_CPU" = 1 ]; then
    bind "$PI/cpuinfo" "$CHROOT/proc/cpuinfo" ro
    bind "$PI/sys" "$CHROOT/sys" ro
else
    log "--no-pi-cpu: no /sys and the host's /proc/cpuinfo in the chroot"
fi
bind /dev "$CHROOT/dev"
bind "$WHEELS" "$CHROOT/opt/wheels" ro
bind "$DIST" "$CHROOT/opt/dist" ro
bind "$DATA" "$CHROOT/opt/data" ro

# A clean environment; QEMU_CPU reaches qemu through it (binfmt_misc hands it the same envp).
in_chroot() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 QEMU_CPU="$CPU" chroot "$CHROOT" "$@"; }

CHROOT_PY=$(in_chroot /usr/bin/python3 -c 'import platform; print(platform.machine(), platform.python_version())') \
    || die "cannot run the chroot's python3 under qemu"
log "chroot python: $CHROOT_PY"
case "$CHROOT_PY" in
    "$ARCH $PY_VERSION".*) ;;
    *) die "expected $ARCH python $PY_VERSION in the chroot, got: $CHROOT_PY" ;;
esac

# ---------------------------------------------------------------- venv in the chroot
VENV_KEY="$REQS_KEY $CHROOT_PY"
PIP=(in_chroot /opt/venv/bin/pip --disable-pip-version-check)
if [ "$(cat "$CHROOT/opt/venv/.edgekit-key" 2>/dev/null)" != "$VENV_KEY" ]; then
    log "creating /opt/venv in the chroot and installing the wheels (--no-index; slow under qemu)"
    rm -rf "$CHROOT/opt/venv"
    cp "$REQS" "$CHROOT/opt/requirements.txt"
    if [ "$ARCH" = armv7l ]; then
        in_chroot python3 -m venv --system-site-packages /opt/venv
        "${PIP[@]}" install -q --no-index --no-deps --find-links /opt/wheels -r /opt/requirements.txt \
            || die "pip install of the dependencies in the chroot failed"
    else
        in_chroot python3 -m venv /opt/venv
        "${PIP[@]}" install -q --no-index --find-links /opt/wheels -r /opt/requirements.txt \
            || die "pip install of the dependencies in the chroot failed"
    fi
    echo "$VENV_KEY" > "$CHROOT/opt/venv/.edgekit-key"
fi
rm -rf "$CHROOT/opt/src"
if [ "${INSTALL%% *}" = wheel ]; then
    log "installing the edgekit wheel in the chroot venv"
    "${PIP[@]}" install -q --no-index --no-deps --force-reinstall --find-links /opt/dist edgekit \
        || die "pip install of the edgekit wheel in the chroot failed"
    if [ "$ARCH" = armv7l ]; then
        # soxr is knowingly absent (see the top); anything else missing is an error.
        missing=$("${PIP[@]}" check 2>/dev/null | grep -v "requires soxr" || true)
        [ -z "$missing" ] || die "the chroot venv misses dependencies of the edgekit wheel: $(head -n3 <<<"$missing")"
    else
        "${PIP[@]}" check >/dev/null || die "the chroot venv misses dependencies of the edgekit wheel: $("${PIP[@]}" check | head -n3)"
    fi
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
rm -rf "$OUT/host" "$OUT/host.json" "$OUT/arm.json" "$CHROOT/opt/out"
mkdir -p "$CHROOT/opt/out"
only=()
[ "$FRONTEND_ONLY" = 0 ] || only=(--frontend-only)

log "check.py on the host ($(uname -m))"
PYTHONPATH=$SRC "$HOST_PY" "$ARM_ROOT/build/check/check.py" --data "$DATA" --dump "$OUT/host" --out "$OUT/host.json" "${only[@]}" \
    || die "check.py failed on the host" 3
# The host's decoded samples go in too: where the chroot decodes/resamples a clip differently (or,
# on armv7l, cannot resample at all), check.py runs that clip on the host's samples as well.
cp -r "$OUT/host" "$CHROOT/opt/out/host-pcm"
log "check.py in the $ARCH chroot (qemu-user, -cpu $CPU; slow)"
in_chroot env PYTHONPATH="$CHROOT_PYTHONPATH" /opt/venv/bin/python /opt/check/check.py --data /opt/data --dump /opt/out/arm \
    --reference-pcm /opt/out/host-pcm --out /opt/out/arm.json "${only[@]}" \
    || die "check.py failed in the $ARCH chroot (exit $?)" 3
cp "$CHROOT/opt/out/arm.json" "$OUT/arm.json"

log "comparing"
mkdir -p "$(dirname "$RESULT")"
status=0
"$HOST_PY" "$HERE/compare.py" "$OUT/host.json" "$OUT/arm.json" \
    --dumps "$OUT/host" "$CHROOT/opt/out/arm" \
    --expect-xnnpack "$EXPECT_XNNPACK" \
    --emulator "$QEMU_VERSION, QEMU_CPU=$CPU (binfmt flags: ${BINFMT_FLAGS:-none})" \
    --chroot "Debian $SUITE $DEBARCH (debootstrap --variant=minbase --include=$CHROOT_PACKAGES)" \
    --install "$INSTALL" \
    --seconds "$(( $(date +%s) - T0 ))" \
    --out "$RESULT" || status=$?
log "done (exit $status); result in $RESULT"
exit "$status"
