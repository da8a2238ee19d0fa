#!/bin/sh
# freezefuzz repro driver: makes a scratch filesystem on a loop-mounted image
# file, runs the probe on it, and removes everything again.
#
#   sudo ./run.sh FS [probe options]     FS: ext4 | ext4-nodelalloc | xfs | btrfs
#
# Probe options: --runs N, --seed S, --hold-ms MS, --min-hold-ms MS (stay frozen
# at least that long, to look at it; the watchdog thaws after 30 s), --settle-ms MS,
# --out FILE
# (see ./probe without arguments). Needs root, the filesystem's mkfs, and a C
# compiler if ./probe is not built yet (cc -O2 -static -pthread -o probe probe.c).
# A scenario with io-error (./probe --needs-dm) runs on a second scratch
# filesystem on a device-mapper device over a loop device, whose table the
# probe switches around FIFREEZE: that needs dmsetup (apt-get install dmsetup).
set -eu
FS=${1:-}
[ -n "$FS" ] || { echo "usage: $0 ext4|ext4-nodelalloc|xfs|btrfs [probe options]" >&2; exit 2; }
shift
HERE=$(cd "$(dirname "$0")" && pwd)
PROBE=${PROBE:-$HERE/probe}
if [ "$(id -u)" != 0 ]; then
    echo "run.sh: needs root (mount -o loop, FIFREEZE)" >&2
    exit 2
fi
if [ -z "${PROBES:-}" ] && [ ! -x "$PROBE" ]; then
    command -v cc >/dev/null 2>&1 || { echo "run.sh: no C compiler: apt-get install gcc libc6-dev" >&2; exit 2; }
    cc -O2 -static -pthread -o "$PROBE" "$HERE/probe.c"
fi
case $FS in
    ext4) MKFS="mkfs.ext4 -q -F"; TYPE=ext4; OPTS=""; SIZE=64M; DELALLOC=1; PKG=e2fsprogs ;;
    ext4-nodelalloc) MKFS="mkfs.ext4 -q -F"; TYPE=ext4; OPTS=",nodelalloc"; SIZE=64M; DELALLOC=0; PKG=e2fsprogs ;;
    # 64 MiB is below mkfs.xfs's 300 MB minimum, which it waives for fstests
    # (TEST_DIR, TEST_DEV and QA_CHECK_FS set); a 320 MB filesystem would zero a 64 MB log.
    xfs) MKFS="env TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f"; TYPE=xfs; OPTS=""; SIZE=64M; DELALLOC=1; PKG=xfsprogs ;;
    btrfs) MKFS="mkfs.btrfs -q -f"; TYPE=btrfs; OPTS=""; SIZE=256M; DELALLOC=1; PKG=btrfs-progs ;;
    *) echo "run.sh: unknown filesystem \`$FS' (expected ext4, ext4-nodelalloc, xfs or btrfs)" >&2; exit 2 ;;
esac
TOOL=mkfs.$TYPE
command -v "$TOOL" >/dev/null 2>&1 || { echo "run.sh: $TOOL not found: apt-get install $PKG" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/freezefuzz.XXXXXX")
MNT=$WORK/mnt
IMG=$WORK/image
MOUNTED=0
DM=""
DM_LOOP=""
DM_MNT=$WORK/mnt-dm
DM_IMG=$WORK/image-dm
export DM_DISABLE_UDEV=1
cleanup() {
    if [ "$MOUNTED" = 1 ]; then
        # The probe's watchdog has thawed already; thaw again in case it was killed.
        fsfreeze -u "$MNT" 2>/dev/null || fsfreeze --unfreeze "$MNT" 2>/dev/null || true
        umount "$MNT" || true
    fi
    if [ -n "$DM" ]; then
        fsfreeze -u "$DM_MNT" 2>/dev/null || fsfreeze --unfreeze "$DM_MNT" 2>/dev/null || true
        umount "$DM_MNT" 2>/dev/null || true
        dmsetup remove "$DM" 2>/dev/null || true
    fi
    if [ -n "$DM_LOOP" ]; then
        losetup -d "$DM_LOOP" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
# The io-error scratch filesystem: /dev/mapper/ff-PID, linear over a loop
# device on its own image file (made once, on first use).
setup_dm() {
    [ -z "$DM" ] || return 0
    command -v dmsetup >/dev/null 2>&1 || { echo "run.sh: dmsetup not found (io-error needs it): apt-get install dmsetup" >&2; return 1; }
    # Called as a condition, where `set -e` does not apply: every step checked.
    truncate -s "$SIZE" "$DM_IMG" || return 1
    DM_LOOP=$(losetup -f) || return 1
    losetup "$DM_LOOP" "$DM_IMG" || { DM_LOOP=""; return 1; }
    dmsetup create "ff-$$" --table "0 $(blockdev --getsz "$DM_LOOP") linear $DM_LOOP 0" || return 1
    DM=ff-$$
    $MKFS "/dev/mapper/$DM" >/dev/null || return 1
    mkdir -p "$DM_MNT" || return 1
    if [ -n "$OPTS" ]; then
        mount -t "$TYPE" -o "${OPTS#,}" "/dev/mapper/$DM" "$DM_MNT" || return 1
    else
        mount -t "$TYPE" "/dev/mapper/$DM" "$DM_MNT" || return 1
    fi
    touch "$DM_MNT/.freezefuzz-scratch" && sync
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
mkdir "$MNT"
truncate -s "$SIZE" "$IMG"
$MKFS "$IMG" >/dev/null
mount -t "$TYPE" -o "loop$OPTS" "$IMG" "$MNT"
MOUNTED=1
touch "$MNT/.freezefuzz-scratch"
sync
if [ -z "${PROBES:-}" ]; then
    if "$PROBE" --needs-dm && [ "$FS" != btrfs ]; then
        setup_dm || exit 2
        "$PROBE" --mount "$DM_MNT" --image "$DM_IMG" --dm "$DM" --fs "$FS" --delalloc "$DELALLOC" "$@"
    else
        "$PROBE" --mount "$MNT" --image "$IMG" --fs "$FS" --delalloc "$DELALLOC" "$@"
    fi
    exit
fi
# Several probes on one scratch filesystem (freezefuzz conform): each one's
# JSON lines, then its exit code, appended to $RESULTS.
for p in $PROBES; do
    if "$p" --needs-dm; then
        # btrfs: not run (copy on write; freezefuzz conform says why).
        [ "$FS" != btrfs ] || continue
        if setup_dm && "$p" --mount "$DM_MNT" --image "$DM_IMG" --dm "$DM" --fs "$FS" --delalloc "$DELALLOC" \
            --out "$WORK/out.jsonl" "$@"; then
            rc=0
        else
            rc=$?
        fi
    elif "$p" --mount "$MNT" --image "$IMG" --fs "$FS" --delalloc "$DELALLOC" --out "$WORK/out.jsonl" "$@"; then
        rc=0
    else
        rc=$?
    fi
    cat "$WORK/out.jsonl" >> "$RESULTS" 2>/dev/null || true
    rm -f "$WORK/out.jsonl"
    name=$(basename "$p")
    echo "{\"probe_exit\":$rc,\"scenario\":\"${name#probe-}\",\"fs\":\"$FS\"}" >> "$RESULTS"
done
