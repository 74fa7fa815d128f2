# shellcheck shell=bash
# scripts/bench --apt (sourced by scripts/bench): what the fakeroot costs a package
# manager. The Debian test image with cron's packages already downloaded (made once by
# `rootless build`, which needs the mirror, then given to podman by `save`), and timed:
#   rootless-fakeroot  rootless with one mapped id (ROOTLESS_IDMAP=single): every chown,
#                      set*id and get*id of dpkg and apt answered by the monitor
#   rootless-subids    rootless with the user's subordinate range (no fakeroot)
#   podman             rootless podman, subordinate range, overlay storage
# each running `apt-get install -y --no-download --no-install-recommends cron` offline
# (--network none) in a fresh container. Podman needs a subordinate range for the Debian
# image: run it as such a user (ROOTLESS_BENCH_USER=rl-sub scripts/bench --apt).

APT_IMAGE=apt-ready:latest

apt_prepare() {
    local fixture=${ROOTLESS_DEBIAN_FIXTURE:-/var/tmp/rootless-fixtures/debian-bookworm.tar}
    if [[ ! -r $fixture ]]; then
        say "no Debian image at $fixture: run scripts/test once (it makes the fixture)"
        return 1
    fi
    export ROOTLESS_ROOT=$work/rootless-store
    "$venv/bin/rootless" import "$fixture" debian:bookworm >/dev/null
    mkdir -p "$work/apt"
    cat >"$work/apt/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN apt-get update && apt-get install -y -d --no-install-recommends cron
EOF
    "$venv/bin/rootless" build -q --network host -t "$APT_IMAGE" "$work/apt" >/dev/null
    "$venv/bin/rootless" save -o "$work/apt/image.tar" "$APT_IMAGE"
    ROOTLESS_IDMAP=single ROOTLESS_ROOT=$work/single-store \
        "$venv/bin/rootless" load -q -i "$work/apt/image.tar" >/dev/null
    podman_configure
    podman load -q -i "$work/apt/image.tar" >/dev/null
}

bench_apt_as_user() {
    venv=$1
    local runs=$2 args=() ok=(rootless-fakeroot) install
    work=$(mktemp -d "${TMPDIR:-/tmp}/rootless-bench.XXXXXX")
    trap cleanup EXIT
    export HOME=$work/home
    mkdir -p "$HOME"
    apt_prepare
    install="apt-get install -y -q --no-download --no-install-recommends cron"
    args+=(-n rootless-fakeroot "env ROOTLESS_IDMAP=single ROOTLESS_ROOT=$work/single-store \
$venv/bin/rootless run --rm --network none $APT_IMAGE $install")
    if grep -qE "^($(id -un)|$(id -u)):" /etc/subuid 2>/dev/null; then
        args+=(-n rootless-subids "$venv/bin/rootless run --rm --network none $APT_IMAGE \
$install")
        ok+=(rootless-subids)
        args+=(-n podman "podman run --rm --network none $APT_IMAGE $install")
        ok+=(podman)
    fi
    hyperfine -N --warmup 1 --runs "$runs" --style basic --output=null \
        --export-json "$work/hyperfine.json" "${args[@]}" >&2
    report "${ok[*]}"
}
