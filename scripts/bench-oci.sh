# shellcheck shell=bash
# scripts/bench --oci (sourced by scripts/bench): rootless-oci beside crun and runc on ONE
# bundle (`rootless bundle` of the busybox image, made rootless as `runc spec --rootless`
# makes a config: user and network namespaces, the user mapped to root), each with its own
# --root:
#   run      RUNTIME run ID: /bin/true, the container deleted at its exit (issue 12's
#            figure: crun published 100 /bin/true containers in 1.69 s)
#   state    RUNTIME state ID of one created container (podman and Slurm poll it)
# medians and ratios to rootless-oci; the targets: run no slower than runc and within 4x
# of crun, state under 30 ms.

oci_bundle() { # $work/bundle from the busybox image, rootless, /bin/true
    export ROOTLESS_ROOT=$work/rootless-store
    "$venv/bin/rootless" image load -i "$work/busybox.oci.tar" >/dev/null
    "$venv/bin/rootless" bundle "$IMAGE" "$work/bundle" >/dev/null
    "$venv/bin/python" - "$work/bundle/config.json" "$(id -u)" "$(id -g)" <<'PY'
import json, sys
path, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = json.load(open(path))
config["process"]["args"] = ["/bin/true"]
linux = config["linux"]
# runc spec --rootless's namespaces: without a network namespace of its own runc may not
# mount sysfs (the kernel refuses it to a user namespace that does not own the netns)
linux["namespaces"] += [{"type": "user"}, {"type": "network"}]
linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
for mount in config["mounts"]:  # gid 5 is not mapped with one id
    if mount["type"] == "devpts":
        mount["options"] = [o for o in mount["options"] if not o.startswith("gid=")]
json.dump(config, open(path, "w"))
PY
}

oci_runtime_path() {
    case $1 in
    rootless-oci) echo "$venv/bin/rootless-oci" ;;
    *) command -v "$1" || true ;;
    esac
}

bench_oci_as_user() {
    venv=$1
    local runs=$2 rt path ok=() missing=() run_args=() state_args=()
    work=$(mktemp -d "${TMPDIR:-/tmp}/rootless-bench.XXXXXX")
    OCI_PARKED=() # global: the EXIT trap runs after this function's locals are gone
    trap 'for r in "${OCI_PARKED[@]}"; do "$(oci_runtime_path "$r")" --root "$work/root-$r" delete -f parked >/dev/null 2>&1 || true; done; cleanup' EXIT
    real_home=$HOME
    export HOME=$work/home
    mkdir -p "$HOME"
    "$venv/bin/python" "$repo/scripts/make-image" --tag "$IMAGE" --oci-archive "$work/busybox.oci.tar"
    oci_bundle
    for rt in rootless-oci crun runc; do
        path=$(oci_runtime_path "$rt")
        if [[ -z $path ]]; then
            missing+=("$rt=not installed")
            continue
        fi
        if ! "$path" --root "$work/root-$rt" run -b "$work/bundle" probe >"$work/$rt.log" 2>&1 ||
            ! "$path" --root "$work/root-$rt" create -b "$work/bundle" parked \
                </dev/null >>"$work/$rt.log" 2>&1; then
            missing+=("$rt=$(tail -n 1 "$work/$rt.log" | cut -c1-60)")
            continue
        fi
        ok+=("$rt")
        OCI_PARKED+=("$rt")
        run_args+=(-n "$rt" "$path --root $work/root-$rt run -b $work/bundle c")
        state_args+=(-n "$rt" "$path --root $work/root-$rt state parked")
    done
    say "run: $runs /bin/true containers each"
    hyperfine -N --warmup 3 --runs "$runs" --style basic \
        --export-json "$work/hyperfine.json" "${run_args[@]}" >&2
    echo "run (one /bin/true container, created, started, waited for, deleted):"
    report "${ok[*]}" "${missing[@]}"
    hyperfine -N --warmup 3 --runs "$runs" --style basic \
        --export-json "$work/hyperfine.json" "${state_args[@]}" >&2
    echo
    echo "state (of a created container):"
    report "${ok[*]}"
}
