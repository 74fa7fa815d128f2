# shellcheck shell=bash
# scripts/bench --build (sourced by scripts/bench): a five-step Dockerfile built cold
# (--no-cache) and fully cached by rootless, podman build and buildah bud --layers, with
# hyperfine; and the layer bytes of the reference's multi-stage example (a build stage,
# then `FROM scratch` with one COPY --from) as each tool stores it (docker-archive save).

build_context() { # build_context DIR: the five-step file and its one source
    mkdir -p "$1"
    printf 'payload\n' >"$1/file.txt"
    cat >"$1/Dockerfile" <<EOF
FROM $IMAGE
RUN echo one > /one
COPY file.txt /file.txt
ENV STEP=4
RUN cat /file.txt /one > /both
EOF
}

multistage_context() {
    mkdir -p "$1"
    cat >"$1/Dockerfile" <<EOF
FROM $IMAGE AS build
WORKDIR /src
RUN printf '#!/bin/sh\necho hello\n' > hello && chmod 755 hello
FROM scratch
COPY --from=build /src/hello /bin/hello
CMD ["/bin/hello"]
EOF
}

layer_bytes() { # layer_bytes ARCHIVE: the bytes of its layer tars
    "$venv/bin/python" - "$1" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    layers = json.load(t.extractfile("manifest.json"))[0]["Layers"]
    print(sum(t.getmember(name).size for name in layers))
PY
}

bench_build_as_user() {
    venv=$1
    local runs=$2 rl ok=() args=() podman_ok=false
    work=$(mktemp -d "${TMPDIR:-/tmp}/rootless-bench.XXXXXX")
    trap cleanup EXIT
    export HOME=$work/home
    mkdir -p "$HOME"
    "$venv/bin/python" "$repo/scripts/make-image" --tag "$IMAGE" \
        --oci-archive "$work/busybox.oci.tar" >/dev/null
    build_context "$work/ctx"
    multistage_context "$work/multi"
    prepare_rootless
    rl="$venv/bin/rootless"
    prepare_podman >"$work/podman.log" 2>&1 && podman_ok=true
    for kind in cold cached; do
        local flag=--no-cache warmup=1
        [[ $kind == cached ]] && flag= warmup=2
        args=(-n "rootless-$kind" "$rl build -q $flag -t b $work/ctx")
        ok=("rootless-$kind")
        if $podman_ok; then
            args+=(-n "podman-$kind" "podman build -q $flag -t b $work/ctx")
            ok+=("podman-$kind")
            if command -v buildah >/dev/null; then
                args+=(-n "buildah-$kind" "buildah bud -q --layers $flag -t b $work/ctx")
                ok+=("buildah-$kind")
            fi
        fi
        hyperfine -N -i --warmup "$warmup" --runs "$runs" --style basic \
            --export-json "$work/hyperfine.json" "${args[@]}" >&2
        report "${ok[*]}"
        echo
    done
    "$rl" build -q -t multi "$work/multi" >/dev/null
    "$rl" save -o "$work/ours.tar" multi
    echo "multi-stage example, layer bytes: rootless $(layer_bytes "$work/ours.tar")"
    if $podman_ok && podman build -q -t multi "$work/multi" >/dev/null 2>&1 &&
        podman save --format docker-archive -o "$work/theirs.tar" multi >/dev/null 2>&1; then
        echo "multi-stage example, layer bytes: podman   $(layer_bytes "$work/theirs.tar")"
    fi
}
