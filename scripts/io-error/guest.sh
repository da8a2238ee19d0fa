#!/bin/sh
# Inside the VM: a data write fails (on exactly the page's block) while
# FIFREEZE syncs the filesystem. Prints what FIFREEZE returns, what is on the
# disk while frozen, and what becomes of the data. Two ways to fail it:
#   error   dm's `error` target on the block: writes (and reads) of the block
#           fail; a cache flush is not sent to it (a failed data write only);
#   flakey  dm-flakey `error_writes` on the block: it fails every write bio it
#           gets, the empty cache-flush bio (REQ_PREFLUSH) included.
# ext4 is also run with `-o nobarrier` (no cache flush from ext4_sync_fs).
export DM_DISABLE_UDEV=1
for CASE in ext4:error ext4:error ext4:flakey ext4:flakey ext4:flakey ext4:flakey \
    ext4-nobarrier:flakey ext4-nobarrier:flakey xfs:error xfs:flakey; do
    FS=${CASE%%:*}
    TARGET=${CASE#*:}
    echo "=== $FS, $TARGET"
    rm -f /tmp/img
    truncate -s 64M /tmp/img
    losetup /dev/loop0 /tmp/img
    SECT=$(blockdev --getsz /dev/loop0)
    dmsetup create ff --table "0 $SECT linear /dev/loop0 0"
    case $FS in
        ext4*) mkfs.ext4 -q -F /dev/mapper/ff ;;
        xfs) TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f /dev/mapper/ff ;;
    esac
    mkdir -p /mnt
    case $FS in
        ext4) mount -t ext4 /dev/mapper/ff /mnt ;;
        ext4-nobarrier) mount -t ext4 -o nobarrier /dev/mapper/ff /mnt ;;
        xfs) mount -t xfs /dev/mapper/ff /mnt ;;
    esac
    fftool write /mnt/f 1
    sync
    OFF=$(fftool fiemap /mnt/f)
    S=$((OFF / 512))
    echo "block at byte $OFF; on disk: $(fftool read /dev/loop0 $OFF)"
    fftool write /mnt/f 2
    echo "stored 2 with pwrite (dirty, block allocated); on disk: $(fftool read /dev/loop0 $OFF)"
    # Writes to that block (8 sectors) fail from now on; everything else is linear.
    dmsetup suspend --nolockfs --noflush ff
    case $TARGET in
        error) BAD="error" ;;
        flakey) BAD="flakey /dev/loop0 $S 0 1 1 error_writes" ;;
    esac
    printf '0 %s linear /dev/loop0 0\n%s 8 %s\n%s %s linear /dev/loop0 %s\n' \
        $S $S "$BAD" $((S + 8)) $((SECT - S - 8)) $((S + 8)) | dmsetup load ff
    dmsetup resume ff
    echo "injecting write errors on the block; FIFREEZE:"
    fftool freeze /mnt
    echo "while frozen: on disk $(fftool read /dev/loop0 $OFF), page cache $(fftool cached /mnt/f)"
    grep " /mnt " /proc/mounts
    fftool thaw /mnt
    dmsetup suspend --nolockfs --noflush ff
    dmsetup load ff --table "0 $SECT linear /dev/loop0 0"
    dmsetup resume ff
    echo "errors off, thawed; fsync: $(fftool fsync /mnt/f)"
    sync
    echo "after sync: on disk $(fftool read /dev/loop0 $OFF), page cache $(fftool cached /mnt/f)"
    echo 3 > /proc/sys/vm/drop_caches
    echo "after drop_caches: the file reads $(fftool cached /mnt/f)"
    echo "second fsync: $(fftool fsync /mnt/f)"
    dmesg -c | grep -iE "I/O error|writeback error|VFS|JBD2|Aborting|shut" | tail -4
    umount /mnt
    dmsetup remove ff
    losetup -d /dev/loop0
done
