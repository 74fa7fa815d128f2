/* rootless C shim: thin syscall wrappers Python 3.11's os module lacks.
 * Every function returns what the syscall returns (-1 with errno set on failure).
 * No policy lives here: the decisions are made in src/rootless/kernel and runtime. */
#include <stdint.h>

int rl_unshare(int flags);
int rl_setns(int fd, int nstype);
int rl_mount(const char *source, const char *target, const char *fstype,
             unsigned long flags, const char *data);
int rl_umount2(const char *target, int flags);
int rl_pivot_root(const char *new_root, const char *put_old);
int rl_mount_setattr(int dirfd, const char *path, unsigned int flags,
                     uint64_t attr_set, uint64_t attr_clr, uint64_t propagation,
                     uint64_t userns_fd);
int rl_open_tree(int dirfd, const char *path, unsigned int flags);
int rl_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                  const char *to_path, unsigned int flags);
int rl_fsopen(const char *fstype, unsigned int flags);
int rl_fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux);
int rl_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
int rl_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
               uint64_t resolve);
int rl_prctl(int option, unsigned long arg2, unsigned long arg3,
             unsigned long arg4, unsigned long arg5);
int rl_capget(uint32_t pid, uint32_t *effective, uint32_t *permitted,
              uint32_t *inheritable);
int rl_capset(const uint32_t *effective, const uint32_t *permitted,
              const uint32_t *inheritable);
int rl_close_range(unsigned int first, unsigned int last, unsigned int flags);
/* inotify(7): the FUSE overlay's watch of the fakeroot's credentials table */
int rl_inotify_init1(int flags);
int rl_inotify_add_watch(int fd, const char *path, unsigned int mask);
long rl_fstatfs_type(int fd);
int rl_sethostname(const char *name, size_t len);
int rl_socket(int domain, int type, int protocol);
int rl_seccomp_set_filter(unsigned int flags, const void *filter,
                          unsigned short len);
/* one seccomp user notification (struct seccomp_notif, flattened) */
struct rl_notif {
    uint64_t id;
    uint32_t pid;
    uint32_t flags;
    int32_t nr;
    uint32_t arch;
    uint64_t instruction_pointer;
    uint64_t args[6];
};
int rl_seccomp_notif_sizes(uint16_t *notif, uint16_t *resp, uint16_t *data);
int rl_seccomp_notif_recv(int fd, struct rl_notif *out);
int rl_seccomp_notif_send(int fd, uint64_t id, int64_t val, int32_t error,
                          uint32_t flags);
int rl_seccomp_notif_id_valid(int fd, uint64_t id);
int rl_execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                int flags);
