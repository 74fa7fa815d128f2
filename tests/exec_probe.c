/* A probe run inside containers by tests/test_exec_helper.py (crun's tests/init.c idea):
 * it answers questions about the container's processes as plain lines of text.
 * Built static by the tests (gcc -static), so it runs in any image, and also as a
 * dynamic loader: the kernel runs a program's PT_INTERP with no arguments of its own.
 *
 *   exec_probe fds          every process's descriptors above 2 (its own directory
 *                           handles left out): "PID FD TARGET" lines, then
 *                           "audited N processes"
 *   exec_probe write PATH   what PATH links to, the seals of the file behind it
 *                           (F_GET_SEALS), and the errno of opening it for writing and
 *                           of writing to it: "link=...", "seals=N", "open=ERRNO",
 *                           "write=ERRNO" (0: it worked)
 *   exec_probe ...          anything else (run as a dynamic loader, say): the attack of
 *                           runc's CVE-2019-5736, "attacker ran: exe=LINK" and the
 *                           results of rewriting /proc/self/exe as `write` gives them
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void try_write(const char *path)
{
    char link[4096];
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = '\0';
    printf("link=%s\n", n >= 0 ? link : strerror(errno));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    printf("seals=%d\n", fd >= 0 ? fcntl(fd, F_GET_SEALS) : -errno);
    if (fd >= 0)
        close(fd);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    printf("open=%d\n", fd >= 0 ? 0 : errno);
    if (fd >= 0) {
        ssize_t w = write(fd, "\177ELF pwned", 10);
        printf("write=%d\n", w >= 0 ? 0 : errno);
        close(fd);
    }
    fflush(stdout);
}

static int audit_fds(void)
{
    DIR *proc = opendir("/proc");
    if (!proc) {
        perror("/proc");
        return 1;
    }
    int processes = 0;
    pid_t self = getpid();
    struct dirent *p;
    while ((p = readdir(proc)) != NULL) {
        int pid = atoi(p->d_name);
        if (pid <= 0)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/fd", pid);
        DIR *fds = opendir(path);
        if (!fds) {
            printf("%d ? %s\n", pid, strerror(errno));
            continue;
        }
        processes++;
        struct dirent *f;
        while ((f = readdir(fds)) != NULL) {
            if (f->d_name[0] == '.')
                continue;
            int fd = atoi(f->d_name);
            if (fd <= 2 || (pid == self && (fd == dirfd(proc) || fd == dirfd(fds))))
                continue;
            char link[sizeof path + 16], target[4096];
            snprintf(link, sizeof link, "%s/%d", path, fd);
            ssize_t n = readlink(link, target, sizeof target - 1);
            target[n > 0 ? n : 0] = '\0';
            printf("%d %d %s\n", pid, fd, n >= 0 ? target : strerror(errno));
        }
        closedir(fds);
    }
    closedir(proc);
    printf("audited %d processes\n", processes);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "fds") == 0)
        return audit_fds();
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        try_write(argv[2]);
        return 0;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    printf("attacker ran: exe=%s\n", exe);
    try_write("/proc/self/exe");
    return 99;
}
