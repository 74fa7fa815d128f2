/* An in-container probe for tests/test_seccomp.py (crun's tests/init.c answers questions
 * the same way): each argument names a check; each prints "NAME ok" or "NAME ERRNO-NAME".
 * Built static by the tests (gcc -static) and bound into busybox, which cannot make
 * these calls itself.
 *
 * Where the kernel would refuse a call for lack of privilege too, the arguments are
 * chosen so that the kernel, unfiltered, answers something else first (a bad pointer:
 * EFAULT; an unknown command: EINVAL or EOPNOTSUPP), so EPERM can only come from the
 * seccomp filter, which answers before the kernel looks at any argument. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD_POINTER ((void *)1)
#define AF_VSOCK_ 40
#define AF_ALG_ 38
#define UFFD_USER_MODE_ONLY_ 1

extern char **environ;

static long check_unshare_user(void) { return unshare(CLONE_NEWUSER); }
static long check_mount(void) { return syscall(SYS_mount, "none", BAD_POINTER, "tmpfs", 0, NULL); }
static long check_keyctl(void) { return syscall(SYS_keyctl, 0x7fff, 0, 0, 0, 0); }
static long check_add_key(void) { return syscall(SYS_add_key, BAD_POINTER, "x", NULL, 0, 0); }
static long check_bpf(void) { return syscall(SYS_bpf, 0x7fff, NULL, 0); }
static long check_perf_event_open(void)
{
    return syscall(SYS_perf_event_open, BAD_POINTER, 0, -1, -1, 0);
}
static long check_kexec_load(void) { return syscall(SYS_kexec_load, 0, 0, NULL, 0); }
static long check_open_by_handle_at(void) { return syscall(SYS_open_by_handle_at, -1, NULL, 0); }
static long check_clone3(void) { return syscall(SYS_clone3, NULL, 0); }
static long check_nr1000(void) { return syscall(1000, 0, 0, 0, 0, 0, 0); }

static long close_result(long fd)
{
    if (fd >= 0)
        close((int)fd);
    return fd < 0 ? -1 : 0;
}

static long check_userfaultfd(void)
{
    return close_result(syscall(SYS_userfaultfd, UFFD_USER_MODE_ONLY_ | O_CLOEXEC));
}
static long check_socket_vsock(void) { return close_result(socket(AF_VSOCK_, SOCK_STREAM, 0)); }
static long check_socket_alg(void) { return close_result(socket(AF_ALG_, SOCK_SEQPACKET, 0)); }
static long check_socket_inet(void) { return close_result(socket(AF_INET, SOCK_STREAM, 0)); }

static long check_personality(void)
{
    int old = personality(0xffffffff);
    long rc = personality(ADDR_NO_RANDOMIZE);
    if (rc != -1)
        personality(old);
    return rc == -1 ? -1 : 0;
}

static void *thread_body(void *arg) { return arg; }

static long check_pthread(void)
{
    pthread_t thread;
    void *out = NULL;
    int rc = pthread_create(&thread, NULL, thread_body, (void *)42);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    pthread_join(thread, &out);
    return out == (void *)42 ? 0 : (errno = EIO, -1);
}

static long check_posix_spawn(void)
{
    char *argv[] = {"probe", NULL};
    pid_t pid;
    int status, rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : (errno = ECHILD, -1);
}

static long check_ptrace_child(void)
{
    int status;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
            _exit(1);
        raise(SIGSTOP);
        _exit(0);
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    if (!WIFSTOPPED(status)) /* PTRACE_TRACEME failed: the child exited */
        return errno = EPERM, -1;
    long rc = ptrace(PTRACE_CONT, pid, NULL, NULL);
    int err = errno;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    errno = err;
    return rc;
}

static const struct {
    const char *name;
    long (*run)(void);
} CHECKS[] = {
    {"unshare_user", check_unshare_user}, {"mount", check_mount},
    {"keyctl", check_keyctl}, {"add_key", check_add_key}, {"bpf", check_bpf},
    {"perf_event_open", check_perf_event_open}, {"userfaultfd", check_userfaultfd},
    {"kexec_load", check_kexec_load}, {"open_by_handle_at", check_open_by_handle_at},
    {"socket_vsock", check_socket_vsock}, {"socket_alg", check_socket_alg},
    {"personality", check_personality}, {"clone3", check_clone3}, {"nr1000", check_nr1000},
    {"pthread", check_pthread}, {"posix_spawn", check_posix_spawn},
    {"socket_inet", check_socket_inet}, {"ptrace_child", check_ptrace_child},
};

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "seccomp") == 0) { /* the mode: 0 none, 2 filter */
            printf("seccomp %d\n", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
            continue;
        }
        size_t n;
        for (n = 0; n < sizeof CHECKS / sizeof CHECKS[0]; n++)
            if (strcmp(argv[i], CHECKS[n].name) == 0)
                break;
        if (n == sizeof CHECKS / sizeof CHECKS[0]) {
            printf("%s unknown-check\n", argv[i]);
            continue;
        }
        errno = 0;
        long rc = CHECKS[n].run();
        const char *name = strerrorname_np(errno);
        printf("%s %s\n", argv[i], rc >= 0 ? "ok" : name ? name : "E?");
        fflush(stdout);
    }
    return 0;
}
