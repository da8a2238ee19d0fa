#!/usr/bin/env bash
# Boots a Linux kernel in QEMU with a tiny initramfs and runs freezefuzz
# probes on scratch filesystems inside it. Called by `freezefuzz conform`;
# usable by hand:
#
#   scripts/conform-vm.sh --probes DIR --out DIR [--kernel PATH] [--modules DIR]
#       [--fs "ext4 ext4-nodelalloc xfs btrfs"] [--runs N] [--seed S] [--timeout SECONDS]
#
# DIR (--probes) holds run.sh and one statically linked probe per scenario,
# named probe-SCENARIO. Writes OUT/results.jsonl (one JSON line per probe run,
# plus {"probe_exit":…} lines), OUT/serial.log (the console) and OUT/kernel.txt.
# Exit 0 when the guest ran to the end, 2 otherwise (with the reason on stderr;
# the serial log is kept).
set -euo pipefail

KERNEL=""
MODULES=""
PROBES=""
OUT=""
FSLIST="ext4 ext4-nodelalloc xfs btrfs"
RUNS=""
SEED=1
TIMEOUT=240
MEM=1024
die() { echo "conform-vm: error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --kernel) KERNEL=$2; shift 2 ;;
        --modules) MODULES=$2; shift 2 ;;
        --probes) PROBES=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --fs) FSLIST=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        *) die "unknown argument \`$1'" ;;
    esac
done
[ -n "$PROBES" ] && [ -n "$OUT" ] || die "--probes DIR and --out DIR are required"

need() { # command package
    command -v "$1" >/dev/null 2>&1 || die "\`$1' not found: install it with apt-get install $2 (all at once: apt-get install qemu-system-x86 linux-image-amd64 busybox-static e2fsprogs xfsprogs btrfs-progs gcc libc6-dev cpio kmod dmsetup)"
}
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need modprobe kmod
need mkfs.ext4 e2fsprogs
for fs in $FSLIST; do
    case $fs in
        xfs) need mkfs.xfs xfsprogs ;;
        btrfs) need mkfs.btrfs btrfs-progs ;;
        ext4|ext4-nodelalloc) ;;
        *) die "unknown filesystem \`$fs' (expected ext4, ext4-nodelalloc, xfs or btrfs)" ;;
    esac
done
# Scenarios with io-error run on a device-mapper device (run.sh, probe --needs-dm).
IO_ERROR=0
for p in "$PROBES"/probe-*; do
    [ -x "$p" ] && "$p" --needs-dm && IO_ERROR=1
done
[ $IO_ERROR = 0 ] || need dmsetup dmsetup
BUSYBOX=$(command -v busybox || true)
{ [ -n "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1; } || die "no static busybox: install it with apt-get install busybox-static"

if [ -z "$KERNEL" ]; then
    KERNEL=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$KERNEL" ] || die "no kernel in /boot: install one with apt-get install linux-image-amd64, or pass --kernel PATH"
fi
[ -r "$KERNEL" ] || die "cannot read kernel image $KERNEL"
KVER=$(basename "$KERNEL" | sed 's/^vmlinuz-//')
if [ -z "$MODULES" ]; then
    MODULES=/lib/modules/$KVER
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/freezefuzz-vm.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
mkdir -p "$ROOT"/{bin,sbin,lib,lib64,mods,proc,sys,dev,tmp,etc,ff}
cp "$BUSYBOX" "$ROOT/bin/busybox"
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$ROOT/etc/"

# Filesystem tools with their shared libraries.
copy_bin() {
    local bin
    bin=$(command -v "$1") || return 0
    cp -L "$bin" "$ROOT/sbin/"
    ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
        [ -f "$lib" ] || continue
        mkdir -p "$ROOT$(dirname "$lib")"
        cp -L "$lib" "$ROOT$lib"
    done
}
for b in mkfs.ext4 mkfs.xfs mkfs.btrfs; do copy_bin "$b"; done
[ $IO_ERROR = 0 ] || copy_bin dmsetup

# Kernel modules, in dependency order (built-in ones need none).
MODLIST=""
if [ -d "$MODULES" ]; then
    DM_MODS=""
    [ $IO_ERROR = 0 ] || DM_MODS=dm-mod
    for m in loop ext4 xfs btrfs $DM_MODS; do
        modprobe -d "${MODULES%/lib/modules/*}/" -S "$KVER" --show-depends "$m" 2>/dev/null || true
    done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' > "$STAGE/mods.txt"
    i=0
    while read -r ko; do
        i=$((i + 1))
        cp "$ko" "$ROOT/mods/$(printf %02d "$i")-$(basename "$ko")"
    done < "$STAGE/mods.txt"
fi

cp "$PROBES"/run.sh "$ROOT/ff/"
cp "$PROBES"/probe-* "$ROOT/ff/"
RUNARG=""
[ -n "$RUNS" ] && RUNARG="--runs $RUNS"
cat > "$ROOT/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in /mods/*.ko; do [ -e "\$m" ] && insmod "\$m" 2>/dev/null; done
# A busy flusher: background writeback every 100 ms, dirty pages expire at once.
echo 10 > /proc/sys/vm/dirty_writeback_centisecs
echo 10 > /proc/sys/vm/dirty_expire_centisecs
R=/dev/ttyS1
stty -F \$R raw -echo 2>/dev/null
echo "{\"kernel\":\"\$(uname -r)\",\"version\":\"\$(cat /proc/version)\"}" > \$R
echo FREEZEFUZZ-BOOTED
for fs in $FSLIST; do
    PROBES="\$(ls /ff/probe-* | tr '\\n' ' ')" RESULTS=\$R sh /ff/run.sh \$fs --seed $SEED $RUNARG \
        || echo "{\"fs_error\":\"\$fs\",\"exit\":\$?}" > \$R
done
echo "{\"done\":true}" > \$R
echo FREEZEFUZZ-DONE
echo o > /proc/sysrq-trigger
poweroff -f
INIT
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc --quiet) > "$STAGE/initrd"

: > "$OUT/results.jsonl"
: > "$OUT/serial.log"
echo "$KVER" > "$OUT/kernel.txt"
set +e
timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 -accel tcg -m "$MEM" -smp 2 -no-reboot \
    -net none -kernel "$KERNEL" -initrd "$STAGE/initrd" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1" \
    -serial "file:$OUT/serial.log" -serial "file:$OUT/results.jsonl" -monitor none -display none </dev/null
rc=$?
set -e
if [ $rc = 124 ] || [ $rc = 137 ]; then
    die "the guest did not finish within $TIMEOUT s (hang?); serial log kept in $OUT/serial.log"
fi
grep -q FREEZEFUZZ-BOOTED "$OUT/serial.log" || die "the kernel $KERNEL did not boot to the probe (qemu exit $rc); serial log kept in $OUT/serial.log"
grep -q '"done":true' "$OUT/results.jsonl" || die "the guest stopped before the end (qemu exit $rc); serial log kept in $OUT/serial.log"
exit 0
