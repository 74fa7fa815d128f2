/* rootless-init: the last stage between the runtime and a container's command.
 *
 *   rootless-init [--init] [--no-close-range] [--report-fd N] [--preserve-fds N]
 *                 [--wait-fd N] -- COMMAND [ARG...]
 *   rootless-init --hold-lock N
 *
 * Why a separate static program (DESIGN.md, principle 7): the runtime is a Python
 * interpreter that the user may be able to write to (a venv made with --copies, conda,
 * pyenv). If the container's first process were that interpreter, a command of
 * /proc/self/exe would run it again inside the container (with the image's own dynamic
 * loader), and the container would hold a handle on a host file it can rewrite: runc's
 * CVE-2019-5736. So the runtime copies this program into a sealed memfd (memfd_create(2),
 * F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL, fcntl(2)) before it forks, and the
 * container's init execveat(2)s that copy once its set-up is done. From then on
 * /proc/self/exe of the container's first process names an anonymous file nobody can
 * write, and this program, being static, has no dynamic loader for an image to replace:
 * exec'ing /proc/self/exe from the container just runs it again and it refuses with a
 * usage error (the runtime never gives it arguments a container could not give itself).
 *
 * What it does, in order: reset every signal disposition and unblock the mask (execve
 * keeps ignored signals ignored, and Python ignores SIGPIPE and SIGXFSZ); mark every
 * descriptor above 2 close-on-exec (the report pipe included: its closing at execve is
 * how the runtime learns the command started; --no-close-range, which the runtime
 * passes where its own close_range(2) failed, marks them one by one instead, as on a
 * kernel before 5.9, or under ROOTLESS_KERNEL_FLOOR); look COMMAND up in the PATH of the
 * environment it was given; execve it. A failure is reported as one JSON line on the
 * report pipe ({"message": ..., "code": 126|127}, Docker's wording), which the runtime
 * prints. With --init it stays pid 1 as tini does: the command runs in a child of its
 * own process group (the terminal's foreground group if stdin is one); every signal
 * that can be forwarded goes to the child; every zombie is reaped; it exits with the
 * child's status (128+N for signal N).
 *
 * --preserve-fds N (rootless-oci, runc's flag): descriptors 3 to 3+N-1 stay open for
 * the command. --wait-fd N (rootless-oci's `create`): the container is parked, as runc's
 * init waits on its exec.fifo: COMMAND is looked up first (a missing one fails `create`
 * with 127, as runc's LookPath before the fifo does), the report pipe is closed (the
 * runtime's sign that the container is created), then this blocks reading one byte
 * from N (`start` writes it) and execs what it found; a failure from then on has no
 * runtime to read it and goes to stderr.
 *
 * --hold-lock N is the pause process of user networks (net/pause.py): it holds the
 * user and hub network namespaces it was started in for as long as any container's
 * monitor holds a shared flock(2) on the lock file N is open on, by blocking on an
 * exclusive one, then exits (and the namespaces go with it). No command, no exec.
 *
 * It holds no descriptor but 0, 1 and 2 once the command runs, and no policy: the
 * runtime did namespaces, mounts, ids, capabilities and seccomp before exec'ing it.
 * Built with `gcc -static -Os` by setup.py into src/rootless/_exec_helper.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define NAME "rootless-init"
#define EXIT_ENGINE 125
#define EXIT_CANNOT_INVOKE 126
#define EXIT_NOT_FOUND 127
/* moby's default (oci.DefaultPathEnv), for an environment without PATH */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define KERNEL_NSIG 65 /* signals 1..64; glibc's NSIG hides its own two (32, 33) */

static int report_fd = -1;
static int use_close_range = 1; /* 0: --no-close-range */
static unsigned int first_released = 3; /* 3 + --preserve-fds */
static const char *resolved; /* --wait-fd: the command's path, found before parking */

/* ---- reporting ------------------------------------------------------------------ */

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

/* `in` as the inside of a JSON string: quotes, backslashes and control bytes escaped;
 * other bytes pass (the runtime decodes with errors="replace"). */
static char *json_escape(const char *in)
{
    char *out = malloc(strlen(in) * 6 + 1), *p = out;
    if (!out)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)in; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *p++ = '\\';
            *p++ = (char)*c;
        } else if (*c < 0x20 || *c == 0x7f) {
            p += sprintf(p, "\\u%04x", *c);
        } else {
            *p++ = (char)*c;
        }
    }
    *p = '\0';
    return out;
}

/* Report `message` and exit with `code`: on the report pipe as one JSON line when the
 * runtime gave one (it prints the message and exits with the code), else on stderr. */
static void fail(int code, const char *message)
{
    char *line = NULL;
    if (report_fd >= 0) {
        char *escaped = json_escape(message);
        if (escaped &&
            asprintf(&line, "{\"message\": \"%s\", \"code\": %d}\n", escaped, code) >= 0)
            write_all(report_fd, line, strlen(line));
    } else if (asprintf(&line, NAME ": %s\n", message) >= 0) {
        write_all(2, line, strlen(line));
    }
    _exit(code);
}

__attribute__((format(printf, 2, 3))) static void failf(int code, const char *format, ...)
{
    va_list args;
    char *message = NULL;
    va_start(args, format);
    if (vasprintf(&message, format, args) < 0)
        message = (char *)format;
    va_end(args);
    fail(code, message);
}

static void usage(void)
{
    static const char text[] =
        NAME ": this is the container runtime's exec helper, not a command (usage: "
        NAME " [--init] [--no-close-range] [--report-fd N] [--preserve-fds N] "
        "[--wait-fd N] -- COMMAND [ARG...])\n";
    write_all(2, text, sizeof text - 1);
    _exit(EXIT_CANNOT_INVOKE);
}

/* ---- signals and descriptors ---------------------------------------------------- */

/* Every disposition back to SIG_DFL and an empty mask, through the raw syscalls so
 * glibc's reserved real-time signals are included too. A zeroed kernel sigaction is
 * SIG_DFL with no flags on every architecture. */
static void signals_reset(void)
{
    unsigned long action[4] = {0, 0, 0, 0};
    unsigned long empty = 0;
    for (int sig = 1; sig < KERNEL_NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, action, NULL, sizeof empty);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, sizeof empty);
}

static void fd_release(int fd, int cloexec)
{
    if (cloexec)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    else
        close(fd);
}

/* Every descriptor from 3 up: close-on-exec (cloexec) or closed now. close_range(2)
 * where the kernel has it (Linux 5.9; CLOSE_RANGE_CLOEXEC: 5.11) and the runtime did
 * not say otherwise, else one by one from /proc/self/fd, else up to RLIMIT_NOFILE. */
static void fds_release(int cloexec)
{
    if (use_close_range &&
        syscall(SYS_close_range, first_released, ~0U,
                cloexec ? CLOSE_RANGE_CLOEXEC : 0U) == 0)
        return;
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        int own = dirfd(dir);
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            int fd = atoi(entry->d_name);
            if (fd >= (int)first_released && fd != own)
                fd_release(fd, cloexec);
        }
        closedir(dir);
        return;
    }
    struct rlimit limit;
    rlim_t last = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 1024;
    for (rlim_t fd = first_released; fd < last && fd <= INT_MAX; fd++)
        fd_release((int)fd, cloexec);
}

/* ---- exec ----------------------------------------------------------------------- */

/* Docker's wording and exit code for a command that could not be started (the
 * runtime's messages before this helper existed, which the tests pin down). */
static void exec_failed(const char *program, int err)
{
    if (err == ENOENT || err == ENOTDIR) {
        if (strchr(program, '/'))
            failf(EXIT_NOT_FOUND, "exec: \"%s\": stat %s: no such file or directory",
                  program, program);
        failf(EXIT_NOT_FOUND, "exec: \"%s\": executable file not found in $PATH", program);
    }
    if (err == EACCES || err == EPERM || err == EISDIR)
        failf(EXIT_CANNOT_INVOKE, "exec: \"%s\": permission denied", program);
    if (err == ENOEXEC)
        failf(EXIT_CANNOT_INVOKE, "exec: \"%s\": exec format error", program);
    char detail[128];
    snprintf(detail, sizeof detail, "%s", strerror(err));
    for (char *c = detail; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    failf(EXIT_CANNOT_INVOKE, "exec: \"%s\": %s", program, detail);
}

/* execvp(3) without its sh fallback for ENOEXEC, in the environment we were given:
 * a name with a slash is run as it is; otherwise each PATH entry is tried in turn and
 * the first error other than ENOENT/ENOTDIR is the one reported. */
static void exec_command(char **argv)
{
    const char *program = argv[0];
    if (resolved) { /* argv[0] stays as given: busybox picks its applet by it */
        execve(resolved, argv, environ);
        exec_failed(program, errno);
    }
    if (program[0] == '\0')
        exec_failed(program, ENOENT);
    if (strchr(program, '/')) {
        execve(program, argv, environ);
        exec_failed(program, errno);
    }
    const char *path = getenv("PATH");
    if (!path)
        path = DEFAULT_PATH;
    int saved = 0, last = ENOENT;
    size_t name_len = strlen(program);
    for (const char *dir = path;; dir++) {
        const char *end = strchrnul(dir, ':');
        size_t dir_len = (size_t)(end - dir);
        char candidate[PATH_MAX];
        if (dir_len + 1 + name_len >= sizeof candidate) {
            last = ENAMETOOLONG;
        } else {
            /* an empty entry is the working directory, as in execvp(3) */
            if (dir_len)
                snprintf(candidate, sizeof candidate, "%.*s/%s", (int)dir_len, dir, program);
            else
                snprintf(candidate, sizeof candidate, "%s", program);
            execve(candidate, argv, environ);
            last = errno;
        }
        if (last != ENOENT && last != ENOTDIR && saved == 0)
            saved = last;
        if (*end == '\0')
            break;
        dir = end;
    }
    exec_failed(program, saved ? saved : last);
}

/* --wait-fd: COMMAND resolved as exec_command would run it (a regular, executable
 * file), failing now with its wording; the path to execve once started. */
static char *command_resolve(const char *program)
{
    static char found[PATH_MAX];
    struct stat st;
    if (program[0] == '\0')
        exec_failed(program, ENOENT);
    if (strchr(program, '/')) {
        if (stat(program, &st) < 0)
            exec_failed(program, errno);
        if (S_ISDIR(st.st_mode) || access(program, X_OK) < 0)
            exec_failed(program, EACCES);
        return (char *)program;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = DEFAULT_PATH;
    int saved = 0;
    for (const char *dir = path;; dir++) {
        const char *end = strchrnul(dir, ':');
        int len = (int)(end - dir);
        if (len) /* an empty entry is the working directory, as in execvp(3) */
            snprintf(found, sizeof found, "%.*s/%s", len, dir, program);
        else
            snprintf(found, sizeof found, "%s", program);
        if (stat(found, &st) == 0) {
            if (!S_ISDIR(st.st_mode) && access(found, X_OK) == 0)
                return found;
            if (!saved)
                saved = EACCES;
        } else if (errno != ENOENT && errno != ENOTDIR && !saved) {
            saved = errno;
        }
        if (*end == '\0')
            break;
        dir = end;
    }
    exec_failed(program, saved ? saved : ENOENT);
    return NULL;
}

/* Park until `start` writes a byte to `fd` (EOF: the runtime gave up; exit quietly). */
static void wait_for_start(int fd, char **argv)
{
    resolved = command_resolve(argv[0]);
    close(report_fd); /* the runtime's `create` returns: the container is created */
    report_fd = -1;
    char byte;
    ssize_t n;
    do
        n = read(fd, &byte, 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n != 1)
        _exit(EXIT_ENGINE);
}

/* ---- --init --------------------------------------------------------------------- */

/* Signals pid 1 keeps for itself: faults must kill it, never wait in a queue;
 * SIGTTIN/SIGTTOU would be its own job control, not the command's (tini's choice). */
static int forwardable(int sig)
{
    switch (sig) {
    case SIGFPE: case SIGILL: case SIGSEGV: case SIGBUS: case SIGABRT: case SIGTRAP:
    case SIGSYS: case SIGTTIN: case SIGTTOU: case SIGKILL: case SIGSTOP:
        return 0;
    }
    return 1;
}

static int exit_code_of(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static void child_start(char **argv)
{
    setpgid(0, 0);
    if (isatty(0)) {
        /* tcsetpgrp(3) from a background group raises SIGTTOU */
        signal(SIGTTOU, SIG_IGN);
        tcsetpgrp(0, getpid());
    }
    signals_reset();
    exec_command(argv);
}

/* Pid 1: the signals are blocked (before the fork, so none is lost) and taken with
 * sigwaitinfo(2), which also works for pid 1 of a namespace: blocked signals are
 * queued even where a SIG_DFL one would be dropped (signal(7), pid_namespaces(7)). */
static void serve_as_init(char **argv)
{
    prctl(PR_SET_NAME, NAME); /* ps shows it so, not as "memfd:rootless-" */
    sigset_t waited;
    sigemptyset(&waited);
    for (int sig = 1; sig < NSIG; sig++)
        if (forwardable(sig))
            sigaddset(&waited, sig);
    sigprocmask(SIG_BLOCK, &waited, NULL);
    pid_t child = fork();
    if (child < 0)
        failf(EXIT_ENGINE, "start %s under --init: fork: %s", argv[0], strerror(errno));
    if (child == 0)
        child_start(argv);
    /* the child's copy of the report pipe closes at its execve; ours goes now, with
     * anything else above stderr, so pid 1 holds nothing of the runtime's */
    report_fd = -1;
    fds_release(0);
    for (;;) {
        int sig = sigwaitinfo(&waited, NULL);
        if (sig < 0)
            continue; /* EINTR */
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            if (pid == child) {
                while (waitpid(-1, NULL, WNOHANG) > 0)
                    ;
                _exit(exit_code_of(status));
            }
    }
}

/* ---- main ----------------------------------------------------------------------- */

static int parse_fd(const char *text)
{
    char *end;
    errno = 0;
    long fd = strtol(text, &end, 10);
    if (errno || *end || end == text || fd < 3 || fd > INT_MAX ||
        fcntl((int)fd, F_GETFD) < 0)
        usage();
    return (int)fd;
}

static int parse_count(const char *text)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || *end || end == text || n < 0 || n > 65536)
        usage();
    return (int)n;
}

static void hold_lock(int fd)
{
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR)
            _exit(EXIT_ENGINE);
    _exit(0);
}

int main(int argc, char **argv)
{
    int init = 0, i = 1, wait_fd = -1;
    if (argc == 3 && strcmp(argv[1], "--hold-lock") == 0)
        hold_lock(parse_fd(argv[2]));
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--init") == 0)
            init = 1;
        else if (strcmp(argv[i], "--no-close-range") == 0)
            use_close_range = 0;
        else if (strcmp(argv[i], "--report-fd") == 0 && i + 1 < argc)
            report_fd = parse_fd(argv[++i]);
        else if (strcmp(argv[i], "--wait-fd") == 0 && i + 1 < argc)
            wait_fd = parse_fd(argv[++i]);
        else if (strcmp(argv[i], "--preserve-fds") == 0 && i + 1 < argc)
            first_released = 3U + (unsigned int)parse_count(argv[++i]);
        else
            usage();
    }
    if (i + 1 >= argc)
        usage();
    char **command = argv + i + 1;
    signals_reset();
    fds_release(1);
    if (wait_fd >= 0)
        wait_for_start(wait_fd, command);
    if (init)
        serve_as_init(command);
    exec_command(command);
    return EXIT_ENGINE;
}
