/* fftool: the few operations the I/O-error experiment needs (static, for a
 * busybox initramfs). See scripts/io-error/run-vm.sh and docs/conformance.md.
 *   fftool write FILE V      pwrite a whole page whose first word is V
 *   fftool fiemap FILE       physical byte offset of the file's first block
 *   fftool freeze DIR        ioctl(FIFREEZE): prints "rc=R errno=E (name)"
 *   fftool thaw DIR          ioctl(FITHAW)
 *   fftool read DEV OFFSET   first word of the block at OFFSET, read with O_DIRECT
 *   fftool cached FILE       first word of the file's page through the page cache
 *   fftool fsync FILE        fsync: prints "rc=R errno=E"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *cmd = argv[1], *path = argv[2];
    if (!strcmp(cmd, "write") && argc == 4) {
        static uint64_t page[512];
        page[0] = strtoull(argv[3], NULL, 0);
        int fd = open(path, O_RDWR | O_CREAT, 0644);
        if (fd < 0 || pwrite(fd, page, 4096, 0) != 4096)
            return perror("write"), 1;
        return 0;
    }
    if (!strcmp(cmd, "fiemap")) {
        int fd = open(path, O_RDONLY);
        struct {
            struct fiemap fm;
            struct fiemap_extent ext[1];
        } f;
        memset(&f, 0, sizeof f);
        f.fm.fm_length = ~0ull;
        f.fm.fm_extent_count = 1;
        if (fd < 0 || ioctl(fd, FS_IOC_FIEMAP, &f) || f.fm.fm_mapped_extents < 1)
            return perror("fiemap"), 1;
        printf("%llu\n", (unsigned long long)f.ext[0].fe_physical);
        return 0;
    }
    if (!strcmp(cmd, "freeze") || !strcmp(cmd, "thaw")) {
        int fd = open(path, O_RDONLY);
        int rc = ioctl(fd, !strcmp(cmd, "freeze") ? FIFREEZE : FITHAW, 0);
        int e = rc ? errno : 0;
        printf("%s rc=%d errno=%d (%s)\n", cmd, rc, e, e ? strerror(e) : "ok");
        return 0;
    }
    if (!strcmp(cmd, "fsync")) {
        int fd = open(path, O_RDWR);
        int rc = fsync(fd);
        int e = rc ? errno : 0;
        printf("fsync rc=%d errno=%d (%s)\n", rc, e, e ? strerror(e) : "ok");
        return 0;
    }
    if (!strcmp(cmd, "read") && argc == 4) {
        int fd = open(path, O_RDONLY | O_DIRECT);
        void *buf;
        if (fd < 0 || posix_memalign(&buf, 4096, 4096) || pread(fd, buf, 4096, strtoll(argv[3], NULL, 0)) != 4096)
            return perror("read"), 1;
        printf("%llu\n", (unsigned long long)*(uint64_t *)buf);
        return 0;
    }
    if (!strcmp(cmd, "cached")) {
        int fd = open(path, O_RDONLY);
        uint64_t w = 0;
        if (fd < 0 || pread(fd, &w, 8, 0) != 8)
            return perror("cached"), 1;
        printf("%llu\n", (unsigned long long)w);
        return 0;
    }
    return 2;
}
