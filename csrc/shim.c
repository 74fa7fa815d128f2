#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "shim.h"

/* Debian 12's glibc (2.36) declares neither openat2's struct nor the new mount API
 * syscalls, so they are called through syscall(2) with the kernel's own layouts. */
struct rl_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

struct rl_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

int rl_unshare(int flags) { return unshare(flags); }

int rl_setns(int fd, int nstype) { return setns(fd, nstype); }

int rl_mount(const char *source, const char *target, const char *fstype,
             unsigned long flags, const char *data)
{
    return mount(source, target, fstype, flags, data);
}

int rl_umount2(const char *target, int flags) { return umount2(target, flags); }

int rl_pivot_root(const char *new_root, const char *put_old)
{
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int rl_mount_setattr(int dirfd, const char *path, unsigned int flags,
                     uint64_t attr_set, uint64_t attr_clr, uint64_t propagation,
                     uint64_t userns_fd)
{
    struct rl_mount_attr attr = {attr_set, attr_clr, propagation, userns_fd};
    return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr);
}

int rl_open_tree(int dirfd, const char *path, unsigned int flags)
{
    return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

int rl_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                  const char *to_path, unsigned int flags)
{
    return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
}

int rl_fsopen(const char *fstype, unsigned int flags)
{
    return (int)syscall(SYS_fsopen, fstype, flags);
}

int rl_fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux)
{
    return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

int rl_fsmount(int fd, unsigned int flags, unsigned int attr_flags)
{
    return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
}

int rl_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
               uint64_t resolve)
{
    struct rl_open_how how = {flags, mode, resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int rl_prctl(int option, unsigned long arg2, unsigned long arg3,
             unsigned long arg4, unsigned long arg5)
{
    return prctl(option, arg2, arg3, arg4, arg5);
}

/* Capability sets are two 32-bit words each (_LINUX_CAPABILITY_VERSION_3). */
int rl_capget(uint32_t pid, uint32_t *effective, uint32_t *permitted,
              uint32_t *inheritable)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, (int)pid};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    int rc = (int)syscall(SYS_capget, &hdr, data);
    if (rc < 0)
        return rc;
    for (int i = 0; i < 2; i++) {
        effective[i] = data[i].effective;
        permitted[i] = data[i].permitted;
        inheritable[i] = data[i].inheritable;
    }
    return 0;
}

int rl_capset(const uint32_t *effective, const uint32_t *permitted,
              const uint32_t *inheritable)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
        data[i].effective = effective[i];
        data[i].permitted = permitted[i];
        data[i].inheritable = inheritable[i];
    }
    return (int)syscall(SYS_capset, &hdr, data);
}

int rl_close_range(unsigned int first, unsigned int last, unsigned int flags)
{
    return (int)syscall(SYS_close_range, first, last, flags);
}

int rl_inotify_init1(int flags)
{
    return inotify_init1(flags);
}

int rl_inotify_add_watch(int fd, const char *path, unsigned int mask)
{
    return inotify_add_watch(fd, path, mask);
}

/* statfs(2)'s f_type of the filesystem `fd` (an O_PATH one will do) is on, or -1 with
 * errno set: the path walk asks it to tell procfs's magic links (PROC_SUPER_MAGIC). */
long rl_fstatfs_type(int fd)
{
    struct statfs st;
    if (fstatfs(fd, &st) < 0)
        return -1;
    return (long)st.f_type;
}

int rl_sethostname(const char *name, size_t len) { return sethostname(name, len); }

/* Python's socket module costs ~3 ms to import; the runtime needs one socket for an
 * ioctl (bringing up lo), so it asks for the descriptor directly. */
int rl_socket(int domain, int type, int protocol) { return socket(domain, type, protocol); }

int rl_seccomp_set_filter(unsigned int flags, const void *filter, unsigned short len)
{
    struct sock_fprog prog = {len, (struct sock_filter *)filter};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* Python's os.execve(fd, ...) would go through fexecve(3), whose glibc fallback opens
 * /proc/self/fd/N; the runtime wants execveat(2) itself (Linux 3.19) with AT_EMPTY_PATH,
 * and the environment exactly as the spec lists it. */
int rl_execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                int flags)
{
    return (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}

/* ---- seccomp user notification (seccomp_unotify(2), Linux 5.0; CONTINUE 5.5) ------
 * The kernel copies its own struct sizes (SECCOMP_GET_NOTIF_SIZES), which a newer
 * kernel may have grown past our headers' structs: the buffers below are zeroed (RECV
 * refuses a buffer that is not) and large enough for either, and only the fields our
 * headers know are copied out or in. */

#define RL_NOTIF_BUFFER 512

static int notif_sizes(struct seccomp_notif_sizes *sizes)
{
    static struct seccomp_notif_sizes cached;
    if (cached.seccomp_notif == 0 &&
        syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &cached) < 0)
        return -1;
    if (cached.seccomp_notif > RL_NOTIF_BUFFER ||
        cached.seccomp_notif_resp > RL_NOTIF_BUFFER) {
        errno = EOVERFLOW;
        return -1;
    }
    *sizes = cached;
    return 0;
}

int rl_seccomp_notif_sizes(uint16_t *notif, uint16_t *resp, uint16_t *data)
{
    struct seccomp_notif_sizes sizes;
    if (notif_sizes(&sizes) < 0)
        return -1;
    *notif = sizes.seccomp_notif;
    *resp = sizes.seccomp_notif_resp;
    *data = sizes.seccomp_data;
    return 0;
}

int rl_seccomp_notif_recv(int fd, struct rl_notif *out)
{
    struct seccomp_notif_sizes sizes;
    union {
        struct seccomp_notif notif;
        char bytes[RL_NOTIF_BUFFER];
    } buf;
    if (notif_sizes(&sizes) < 0)
        return -1;
    memset(&buf, 0, sizeof buf);
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &buf) < 0)
        return -1;
    out->id = buf.notif.id;
    out->pid = buf.notif.pid;
    out->flags = buf.notif.flags;
    out->nr = buf.notif.data.nr;
    out->arch = buf.notif.data.arch;
    out->instruction_pointer = buf.notif.data.instruction_pointer;
    for (int i = 0; i < 6; i++)
        out->args[i] = buf.notif.data.args[i];
    return 0;
}

int rl_seccomp_notif_send(int fd, uint64_t id, int64_t val, int32_t error, uint32_t flags)
{
    union {
        struct seccomp_notif_resp resp;
        char bytes[RL_NOTIF_BUFFER];
    } buf;
    memset(&buf, 0, sizeof buf);
    buf.resp.id = id;
    buf.resp.val = val;
    buf.resp.error = error;
    buf.resp.flags = flags;
    return ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &buf);
}

/* 0 while the notification's process still waits in its syscall (its pid is then still
 * its own); -1 with ENOENT once it has gone (seccomp_unotify(2), NOTIF_ID_VALID). */
int rl_seccomp_notif_id_valid(int fd, uint64_t id)
{
    return ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id);
}
