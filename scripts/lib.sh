# shellcheck shell=bash
# Shared by scripts/test, scripts/demo and scripts/bench (sourced, not run).
#
# When started as root, those scripts do their container work as an unprivileged user:
# rootless exists for people who are not root, and the checkout may sit where other
# users cannot read it (CI clones under /root). So they copy the checkout to a
# world-readable place, give the copy a venv of its own, and run there through runuser.

LIB_USER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

user_ensure() {
    if ! id -u "$1" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/bash "$1"
    fi
}

subids_drop() { # every line of user $1 (by name or uid) from /etc/subuid and /etc/subgid
    local uid
    uid=$(id -u "$1")
    touch /etc/subuid /etc/subgid
    sed -i -e "/^$1:/d" -e "/^$uid:/d" /etc/subuid /etc/subgid
}

system_python() {
    # pyenv or any python under /root would not be readable by the other users
    if [[ -x /usr/bin/python3 ]]; then echo /usr/bin/python3; else command -v python3; fi
}

# copy_prepare REPO DIR: DIR/src = a copy of REPO, DIR/venv = its venv; readable by all.
copy_prepare() {
    local repo=$1 dir=$2
    if [[ -e $dir && $(stat -c %u "$dir") != 0 ]]; then
        rm -rf "$dir" # not ours: never run anything from a directory someone else controls
    fi
    install -d -m 0755 "$dir" "$dir/src"
    # .gitignore'd files (the built shim, egg-info) are neither copied nor deleted, so an
    # up-to-date build in the copy survives the next sync.
    rsync -a --delete --filter=':- .gitignore' --exclude=/.git/ --exclude=/.venv/ \
        "$repo/" "$dir/src/"
    ROOTLESS_PYTHON=$(system_python) "$dir/src/scripts/setup" --venv-only "$dir/venv"
    chmod -R a+rX,go-w "$dir"
}

runtime_dir_for() { # a 0700 XDG_RUNTIME_DIR that user $1 owns
    local uid dir
    uid=$(id -u "$1")
    dir=/run/user/$uid
    install -d -m 0755 /run/user
    install -d -m 0700 -o "$uid" -g "$(id -g "$1")" "$dir"
    echo "$dir"
}

# login_env USER: the clean login-like environment (as `env` arguments) in LOGIN_ENV.
login_env() {
    local user=$1 home
    home=$(getent passwd "$user" | cut -d: -f6)
    LOGIN_ENV=(HOME="$home" USER="$user" LOGNAME="$user" PATH="$LIB_USER_PATH" LANG=C.UTF-8
        TERM="${TERM:-dumb}" XDG_RUNTIME_DIR="$(runtime_dir_for "$user")"
        PYTHONDONTWRITEBYTECODE=1)
}

# run_as USER DIR CMD...: run CMD as USER in DIR with a clean login-like environment.
run_as() {
    local user=$1 dir=$2
    shift 2
    login_env "$user"
    runuser -u "$user" -- env -i -C "$dir" "${LOGIN_ENV[@]}" "$@"
}
