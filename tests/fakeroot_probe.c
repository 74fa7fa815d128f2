/* An in-container probe for tests/test_fakeroot.py: runs its arguments as steps, in
 * order, in one process, and prints one line per step, so a test asserts on what the
 * container's programs saw (crun's tests/init.c answers questions the same way):
 *
 *   ids                        "ids R E S / R E S / G1 G2 ..." (getresuid, getresgid,
 *                              getgroups)
 *   getuid                     "getuid U E G EG" (getuid, geteuid, getgid, getegid)
 *   setresuid R E S            "setresuid ok" or "setresuid EPERM" (-1 for unchanged)
 *   setresgid R E S, setuid U, setgid G, seteuid U, setegid G, setfsuid U (prints the
 *   old fs uid), setgroups G..., end the list with ".")
 *   getgroups-short            getgroups with a buffer one smaller than needed
 *   fchown PATH U G            open(2) then fchown(2)
 *   fchownat-empty PATH U G    O_PATH|O_NOFOLLOW then fchownat(AT_EMPTY_PATH)
 *   fork                       the remaining steps run in a child; the parent waits
 *   thread                     the next step runs in a new thread
 *   exec                       execv(/proc/self/exe) with the remaining steps
 *   loop N                     N getuid calls (a measure of the notification's cost)
 *   stats PATH                 "stats UID:GID:MODE:RDEV ..." as stat, lstat, fstat,
 *                              fstatat(AT_SYMLINK_NOFOLLOW) and statx see PATH (octal
 *                              mode with type bits, rdev as MAJOR,MINOR)
 *
 * Built static by the tests (gcc -static) and bound into busybox, which has no setresuid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int err)
{
    switch (err) {
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case ENOSYS: return "ENOSYS";
    default: return strerror(err);
    }
}

static void result(const char *name, long rc)
{
    if (rc < 0)
        printf("%s %s\n", name, errname(errno));
    else
        printf("%s ok\n", name);
    fflush(stdout);
}

static unsigned id(const char *text) { return (unsigned)strtol(text, NULL, 10); }

static void print_ids(void)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    gid_t groups[256];
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    int n = getgroups(256, groups);
    printf("ids %u %u %u / %u %u %u /", r, e, s, gr, ge, gs);
    for (int i = 0; i < n; i++)
        printf(" %u", groups[i]);
    printf("\n");
    fflush(stdout);
}

struct thread_arg { char **argv; int argc; };
static int run(int argc, char **argv);

static void *thread_main(void *p)
{
    struct thread_arg *arg = p;
    run(arg->argc, arg->argv);
    return NULL;
}

/* Runs one step at argv[0]; returns how many arguments it used, or -1 to stop. */
static int step(int argc, char **argv)
{
    const char *s = argv[0];
    if (!strcmp(s, "ids")) {
        print_ids();
        return 1;
    }
    if (!strcmp(s, "getuid")) {
        printf("getuid %u %u %u %u\n", getuid(), geteuid(), getgid(), getegid());
        fflush(stdout);
        return 1;
    }
    if (!strcmp(s, "setresuid") && argc >= 4) {
        result(s, setresuid(id(argv[1]), id(argv[2]), id(argv[3])));
        return 4;
    }
    if (!strcmp(s, "setresgid") && argc >= 4) {
        result(s, setresgid(id(argv[1]), id(argv[2]), id(argv[3])));
        return 4;
    }
    if (!strcmp(s, "setuid") && argc >= 2) { result(s, setuid(id(argv[1]))); return 2; }
    if (!strcmp(s, "setgid") && argc >= 2) { result(s, setgid(id(argv[1]))); return 2; }
    if (!strcmp(s, "seteuid") && argc >= 2) { result(s, seteuid(id(argv[1]))); return 2; }
    if (!strcmp(s, "setegid") && argc >= 2) { result(s, setegid(id(argv[1]))); return 2; }
    if (!strcmp(s, "setfsuid") && argc >= 2) {
        printf("setfsuid %d\n", setfsuid(id(argv[1])));
        fflush(stdout);
        return 2;
    }
    if (!strcmp(s, "setgroups")) {
        gid_t groups[64];
        int n = 0, i = 1;
        for (; i < argc && strcmp(argv[i], ".") && n < 64; i++)
            groups[n++] = id(argv[i]);
        result(s, setgroups(n, groups));
        return i + 1;
    }
    if (!strcmp(s, "getgroups-short")) {
        gid_t groups[256];
        int n = getgroups(0, NULL);
        result(s, n > 0 ? getgroups(n - 1, groups) : -1);
        return 1;
    }
    if (!strcmp(s, "fchown") && argc >= 4) {
        int fd = open(argv[1], O_RDONLY | O_NONBLOCK);
        result(s, fd < 0 ? -1 : fchown(fd, id(argv[2]), id(argv[3])));
        return 4;
    }
    if (!strcmp(s, "fchownat-empty") && argc >= 4) {
        int fd = open(argv[1], O_PATH | O_NOFOLLOW);
        result(s, fd < 0 ? -1 : fchownat(fd, "", id(argv[2]), id(argv[3]), AT_EMPTY_PATH));
        return 4;
    }
    if (!strcmp(s, "fork")) {
        pid_t pid = fork();
        if (pid == 0) {
            run(argc - 1, argv + 1);
            exit(0);
        }
        waitpid(pid, NULL, 0);
        return -1;
    }
    if (!strcmp(s, "thread") && argc >= 2) {
        pthread_t t;
        struct thread_arg arg = {argv + 1, 1};
        pthread_create(&t, NULL, thread_main, &arg);
        pthread_join(t, NULL);
        return 2;
    }
    if (!strcmp(s, "exec")) {
        argv[0] = "probe";
        execv("/proc/self/exe", argv);
        result("exec", -1);
        return -1;
    }
    if (!strcmp(s, "loop") && argc >= 2) {
        long n = strtol(argv[1], NULL, 10);
        for (long i = 0; i < n; i++)
            getuid();
        printf("loop ok\n");
        fflush(stdout);
        return 2;
    }
    if (!strcmp(s, "stats") && argc >= 2) {
        struct stat st[4];
        struct statx sx;
        int fd = open(argv[1], O_PATH | O_NOFOLLOW);
        int rc = stat(argv[1], &st[0]) | lstat(argv[1], &st[1]) |
                 (fd < 0 ? -1 : fstat(fd, &st[2])) |
                 fstatat(AT_FDCWD, argv[1], &st[3], AT_SYMLINK_NOFOLLOW) |
                 statx(AT_FDCWD, argv[1], AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx);
        if (rc) {
            result(s, -1);
            return 2;
        }
        printf("stats");
        for (int i = 0; i < 4; i++)
            printf(" %u:%u:%o:%u,%u", st[i].st_uid, st[i].st_gid, st[i].st_mode,
                   major(st[i].st_rdev), minor(st[i].st_rdev));
        printf(" %u:%u:%o:%u,%u\n", sx.stx_uid, sx.stx_gid, sx.stx_mode, sx.stx_rdev_major,
               sx.stx_rdev_minor);
        fflush(stdout);
        return 2;
    }
    printf("%s ?\n", s);
    return -1;
}

static int run(int argc, char **argv)
{
    while (argc > 0) {
        int used = step(argc, argv);
        if (used < 0)
            break;
        argc -= used;
        argv += used;
    }
    return 0;
}

int main(int argc, char **argv) { return run(argc - 1, argv + 1); }
