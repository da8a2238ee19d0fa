#!/usr/bin/env bash
# The I/O-error-during-freeze experiment of docs/conformance.md: boots the
# newest /boot kernel in QEMU (TCG) with busybox, mkfs, dmsetup and fftool,
# runs guest.sh, prints its output. Needs the packages of `freezefuzz conform`
# plus dmsetup.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KERNEL=${KERNEL:-$(ls -1 /boot/vmlinuz-* | sort -V | tail -1)}
KVER=$(basename "$KERNEL" | sed 's/^vmlinuz-//')
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
mkdir -p "$ROOT"/{bin,sbin,mods,proc,sys,dev,tmp,etc,mnt}
cp "$(command -v busybox)" "$ROOT/bin/busybox"
cp /etc/mke2fs.conf "$ROOT/etc/" 2>/dev/null || true
for b in mkfs.ext4 mkfs.xfs dmsetup; do
    bin=$(command -v $b)
    cp -L "$bin" "$ROOT/sbin/"
    ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
        [ -f "$lib" ] && mkdir -p "$ROOT$(dirname "$lib")" && cp -L "$lib" "$ROOT$lib"
    done
done
cc -O2 -static -o "$ROOT/sbin/fftool" "$HERE/fftool.c"
cp "$HERE/guest.sh" "$ROOT/guest.sh"
i=0
for m in loop ext4 xfs dm-mod dm-flakey; do modprobe -S "$KVER" --show-depends $m; done |
    awk '$1 == "insmod" && !s[$2]++ {print $2}' | while read -r ko; do
        i=$((i + 1)); cp "$ko" "$ROOT/mods/$(printf %02d $i)-$(basename "$ko")"; done
cat > "$ROOT/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
for m in /mods/*.ko; do insmod $m 2>/dev/null; done
echo "kernel $(uname -r)"
sh /guest.sh 2>&1
echo IOERR-DONE
echo o > /proc/sysrq-trigger
INIT
chmod +x "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc --quiet) > "$STAGE/initrd"
timeout 400 qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -no-reboot -net none -display none -monitor none \
    -kernel "$KERNEL" -initrd "$STAGE/initrd" -append "console=ttyS0 loglevel=3 panic=-1" -serial stdio </dev/null |
    tr -d '\r' | sed -n '/^kernel /,/IOERR-DONE/p'
