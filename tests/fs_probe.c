/* A static probe for tests/test_overlay_posix.py: the file calls busybox has no applet
 * for, each printing one word: "ok" (or the value asked for) or the errno's name.
 *
 *   fs_probe setx PATH NAME VALUE | getx PATH NAME | listx PATH | rmx PATH NAME
 *   fs_probe rename OLD NEW          rename(2) itself (mv copies on EXDEV)
 *   fs_probe open PATH r|w|rw|trunc|append|create|exec
 *   fs_probe unlink PATH | mkdir PATH | rmdir PATH | chmod PATH OCTAL | chown PATH UID GID
 *   fs_probe append PATH             two O_APPEND descriptors write in turn
 *   fs_probe mmap PATH               a shared writable mapping, read back by read(2)
 *   fs_probe fsync PATH              write, fsync, fdatasync
 *   fs_probe statfs PATH             "ok" if f_blocks and f_bsize are sane
 *   fs_probe sparse PATH             a 1 GiB hole then one byte: size and blocks
 *   fs_probe ino PATH                st_ino of PATH
 *   fs_probe cold PATH               a reader's descriptor read cold, a write in the file's
 *                                    middle through another, then the reader cold again:
 *                                    "new" if it reads the write, else "old"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *err_name(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EXDEV: return "EXDEV";
    case EEXIST: return "EEXIST";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    case ENODATA: return "ENODATA";
    case ENOTSUP: return "ENOTSUP";
    case EINVAL: return "EINVAL";
    case EROFS: return "EROFS";
    case ETXTBSY: return "ETXTBSY";
    default: return "EOTHER";
    }
}

static int fail(void) {
    printf("%s\n", err_name(errno));
    return 0;
}

static int check(int ok) {
    if (!ok)
        return fail();
    printf("ok\n");
    return 0;
}

static int do_open(const char *path, const char *how) {
    int flags = O_RDONLY;
    if (!strcmp(how, "w")) flags = O_WRONLY;
    else if (!strcmp(how, "rw")) flags = O_RDWR;
    else if (!strcmp(how, "trunc")) flags = O_WRONLY | O_TRUNC;
    else if (!strcmp(how, "append")) flags = O_WRONLY | O_APPEND;
    else if (!strcmp(how, "create")) flags = O_WRONLY | O_CREAT | O_EXCL;
    if (!strcmp(how, "exec"))
        return check(access(path, X_OK) == 0);
    int fd = open(path, flags, 0644);
    if (fd < 0)
        return fail();
    close(fd);
    return check(1);
}

static int do_append(const char *path) {
    int a = open(path, O_WRONLY | O_APPEND), b = open(path, O_WRONLY | O_APPEND);
    if (a < 0 || b < 0)
        return fail();
    for (int i = 0; i < 3; i++) {
        if (write(a, "a", 1) != 1 || write(b, "b", 1) != 1)
            return fail();
    }
    close(a);
    close(b);
    char buf[64] = {0};
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (n < 0)
        return fail();
    printf("%s\n", buf);
    return 0;
}

static int do_mmap(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ftruncate(fd, 8192) < 0)
        return fail();
    char *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return fail();
    memset(map + 4096, 'm', 10);
    if (msync(map, 8192, MS_SYNC) < 0)
        return fail();
    munmap(map, 8192);
    close(fd);
    char buf[10];
    fd = open(path, O_RDONLY);
    if (fd < 0 || pread(fd, buf, 10, 4096) != 10)
        return fail();
    return check(memcmp(buf, "mmmmmmmmmm", 10) == 0 || (errno = EINVAL, 0));
}

static int do_fsync(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0 || write(fd, "synced", 6) != 6 || fsync(fd) < 0 || fdatasync(fd) < 0)
        return fail();
    return check(close(fd) == 0);
}

static int do_statfs(const char *path) {
    struct statfs s;
    if (statfs(path, &s) < 0)
        return fail();
    return check((s.f_blocks > 0 && s.f_bsize > 0 && s.f_files > 0) || (errno = EINVAL, 0));
}

static int do_sparse(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || pwrite(fd, "x", 1, 1L << 30) != 1 || close(fd) < 0)
        return fail();
    struct stat st;
    if (stat(path, &st) < 0)
        return fail();
    printf("size=%lld small=%s\n", (long long)st.st_size,
           st.st_blocks * 512 < (1L << 20) ? "yes" : "no");
    return 0;
}

/* Hold PATH open for reading while another file is renamed over it (apt's
 * extended_states, dpkg's status), then close: close(2) must not report an error. */
static int do_replace_open(const char *path) {
    char tmp[4096];
    int fd = open(path, O_RDONLY), out;
    if (fd < 0)
        return fail();
    snprintf(tmp, sizeof tmp, "%s.new", path);
    if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 || write(out, "new\n", 4) != 4 ||
        close(out) < 0 || rename(tmp, path) < 0)
        return fail();
    return check(close(fd) == 0);
}

/* Read all of FD with the page cache dropped first (posix_fadvise(2) DONTNEED), so the
 * filesystem answers every byte; return its size, with the 6 bytes at AT in MARK. */
static long read_cold(int fd, long at, char *mark) {
    static char buf[1 << 20];
    long total = 0, got;
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    while ((got = read(fd, buf, sizeof buf)) > 0) {
        for (long i = 0; i < got; i++)
            if (total + i >= at && total + i < at + 6)
                mark[total + i - at] = buf[i];
        total += got;
    }
    return got < 0 ? -1 : total;
}

/* An image file held open for reading while a write through another descriptor copies
 * it up: the reader must then read the upper copy, also where its reads were large
 * (the FUSE server answers those from a mapping of the file: fs/fuse_io.py). */
static int do_cold(const char *path) {
    char mark[7] = "";
    int r = open(path, O_RDONLY), w;
    long size = r < 0 ? -1 : read_cold(r, 0, mark);
    if (size < (1 << 19))
        return size < 0 ? fail() : (errno = EINVAL, fail());
    if ((w = open(path, O_WRONLY)) < 0 || pwrite(w, "colder", 6, size / 2) != 6 ||
        fsync(w) < 0 || close(w) < 0 || read_cold(r, size / 2, mark) != size)
        return fail();
    puts(strcmp(mark, "colder") ? "old" : "new");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fs_probe CMD PATH [ARGS]\n");
        return 2;
    }
    const char *cmd = argv[1], *path = argv[2];
    if (!strcmp(cmd, "setx") && argc == 5)
        return check(lsetxattr(path, argv[3], argv[4], strlen(argv[4]), 0) == 0);
    if (!strcmp(cmd, "getx") && argc == 4) {
        char buf[4096];
        ssize_t n = lgetxattr(path, argv[3], buf, sizeof buf - 1);
        if (n < 0)
            return fail();
        buf[n] = 0;
        printf("%s\n", buf);
        return 0;
    }
    if (!strcmp(cmd, "listx")) {
        char buf[65536];
        ssize_t n = llistxattr(path, buf, sizeof buf);
        if (n < 0)
            return fail();
        for (char *p = buf; p < buf + n; p += strlen(p) + 1)
            printf("%s ", p);
        printf(".\n");
        return 0;
    }
    if (!strcmp(cmd, "rmx") && argc == 4)
        return check(lremovexattr(path, argv[3]) == 0);
    if (!strcmp(cmd, "rename") && argc == 4)
        return check(rename(path, argv[3]) == 0);
    if (!strcmp(cmd, "open") && argc == 4)
        return do_open(path, argv[3]);
    if (!strcmp(cmd, "unlink"))
        return check(unlink(path) == 0);
    if (!strcmp(cmd, "mkdir"))
        return check(mkdir(path, 0755) == 0);
    if (!strcmp(cmd, "rmdir"))
        return check(rmdir(path) == 0);
    if (!strcmp(cmd, "chmod") && argc == 4)
        return check(chmod(path, strtol(argv[3], NULL, 8)) == 0);
    if (!strcmp(cmd, "chown") && argc == 5)
        return check(lchown(path, atoi(argv[3]), atoi(argv[4])) == 0);
    if (!strcmp(cmd, "replace_open"))
        return do_replace_open(path);
    if (!strcmp(cmd, "append"))
        return do_append(path);
    if (!strcmp(cmd, "mmap"))
        return do_mmap(path);
    if (!strcmp(cmd, "fsync"))
        return do_fsync(path);
    if (!strcmp(cmd, "statfs"))
        return do_statfs(path);
    if (!strcmp(cmd, "sparse"))
        return do_sparse(path);
    if (!strcmp(cmd, "cold"))
        return do_cold(path);
    if (!strcmp(cmd, "ino")) {
        struct stat st;
        if (lstat(path, &st) < 0)
            return fail();
        printf("%llu\n", (unsigned long long)st.st_ino);
        return 0;
    }
    fprintf(stderr, "fs_probe: unknown command %s\n", cmd);
    return 2;
}
