/* The filesystem workloads of `scripts/bench --fs`, run inside a container: each prints
 * "NAME MILLISECONDS" for what it timed, so the container's start is never counted.
 * Built static by the bench (gcc -static), bound into the container read-only.
 *
 *   fs-workload meta DIR N      create (100 bytes each), stat, rename, unlink N files
 *   fs-workload seq FILE MIB    write MIB MiB in 1 MiB blocks and fsync; drop the file's
 *                               cached pages (posix_fadvise DONTNEED), read it back
 *   fs-workload time NAME CMD...  run CMD (stdout to /dev/null), time it as NAME
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void report(const char *name, double start) {
    printf("%s %.1f\n", name, now_ms() - start);
    fflush(stdout);
}

static int meta(const char *dir, int n) {
    char a[4096], b[4096], data[100];
    struct stat st;
    memset(data, 'x', sizeof data);
    if (mkdir(dir, 0755) < 0)
        die("mkdir");
    double t = now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/f%d", dir, i);
        int fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 || write(fd, data, sizeof data) != sizeof data || close(fd) < 0)
            die("create");
    }
    report("create", t);
    t = now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/f%d", dir, i);
        if (lstat(a, &st) < 0)
            die("stat");
    }
    report("stat", t);
    t = now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/f%d", dir, i);
        snprintf(b, sizeof b, "%s/g%d", dir, i);
        if (rename(a, b) < 0)
            die("rename");
    }
    report("rename", t);
    t = now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(b, sizeof b, "%s/g%d", dir, i);
        if (unlink(b) < 0)
            die("unlink");
    }
    report("unlink", t);
    return 0;
}

static int seq(const char *path, long mib) {
    static char block[1 << 20];
    memset(block, 'q', sizeof block);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open");
    double t = now_ms();
    for (long i = 0; i < mib; i++)
        if (write(fd, block, sizeof block) != sizeof block)
            die("write");
    if (fsync(fd) < 0 || close(fd) < 0)
        die("fsync");
    report("seq-write", t);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open");
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    t = now_ms();
    ssize_t got;
    while ((got = read(fd, block, sizeof block)) > 0)
        ;
    if (got < 0)
        die("read");
    report("seq-read", t);
    close(fd);
    return 0;
}

static int timed(const char *name, char **argv) {
    double t = now_ms();
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execvp(argv[0], argv);
        die(argv[0]);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        die(name);
    report(name, t);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "meta"))
        return meta(argv[2], atoi(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "seq"))
        return seq(argv[2], atol(argv[3]));
    if (argc >= 4 && !strcmp(argv[1], "time"))
        return timed(argv[2], argv + 3);
    fprintf(stderr, "usage: fs-workload meta DIR N | seq FILE MIB | time NAME CMD...\n");
    return 2;
}
