"""The annotations rootless writes into a container's config.json (OCI runtime spec,
`annotations`) and reads back. The first three steer the runtime's plan
(runtime/plan.py); the others record docker's options for `inspect`. They live here,
with no imports, so that a reader such as `inspect` need not import the plan (~2 ms).
"""

ROOTFS_OVERLAY_ANNOTATION = "run.rootless.rootfs.overlay"
INIT_ANNOTATION = "run.rootless.init"  # "true": pid 1 is our init, as docker's --init
# "1": the process keeps the supplementary groups it was started with, and setgroups(2)
# is denied in its user namespace (crun's annotation, set by podman's --group-add
# keep-groups)
KEEP_GROUPS_ANNOTATION = "run.oci.keep_original_groups"

PRIVILEGED_ANNOTATION = "run.rootless.privileged"  # "true" | "false"
SECCOMP_ANNOTATION = "run.rootless.seccomp"  # builtin | unconfined | a profile's path
# "true": the fakeroot answers the stat family from its records (runtime/fakeroot_stat.py)
FAKEROOT_STAT_ANNOTATION = "run.rootless.fakeroot-stat"
SECURITY_OPT_ANNOTATION = "run.rootless.security-opt"  # JSON list, as docker's SecurityOpt
