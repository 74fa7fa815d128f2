# shellcheck shell=bash
# scripts/bench --net (sourced by scripts/bench): network throughput of a container on
# the default user-mode network, beside rootless podman's defaults, all on loopback:
#   http-100M   a 100 MiB file from busybox httpd in the container, fetched by curl on
#               the host through a published port (-p 127.0.0.1:PORT:80)
#   tcp-bulk    1 GiB from the container (nc -l, fed by /dev/zero) read by the host
#               through a published port
#   to-host     256 MiB fetched by the container (wget) from a busybox httpd on the
#               host's loopback: a connection the container opens, through the helper
#               (--network slirp:allow_host_loopback=true; podman's slirp4netns equivalent)
# each for rootless with pasta (its own forwarding), rootless with slirp4netns (the
# monitor's splice forwarder, net/forwarder.py), and podman; medians of --runs (3 by
# default), in Gbit/s, with ratios to podman's; host loopback (curl from a host httpd)
# as the ceiling. Never part of the tests.

net_free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# net_wait_http URL: until it answers (a published port accepts before the server in the
# container listens: pasta and the forwarder take the connection, then drop it)
net_wait_http() {
    local i
    for ((i = 0; i < 300; i++)); do
        curl -sf -o /dev/null -r 0-0 "$1" && return 0
        sleep 0.1
    done
    return 1
}

# net_read PORT: seconds to read a TCP stream from 127.0.0.1:PORT to its end
net_read() {
    "$venv/bin/python" - "$1" <<'PY'
import socket, sys, time
for attempt in range(100):  # refused inside (nc not listening yet): dropped at once
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    buf, total, t0 = bytearray(1 << 20), 0, time.monotonic()
    while n := s.recv_into(buf):
        total += n
    s.close()
    if total:
        break
    time.sleep(0.1)
print(f"{time.monotonic() - t0:.4f} {total}")
PY
}

# net_curl URL: seconds to fetch URL
net_curl() {
    curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "$1"
}

# net_case NAME CMD...: run CMD (printing "seconds bytes") --runs times; record Gbit/s
net_case() {
    local name=$1 i out
    shift
    : >"$work/$name.times"
    for ((i = 0; i < net_runs; i++)); do
        out=$("$@" 2>>"$work/$name.log") || { echo "failed" >>"$work/$name.times"; continue; }
        echo "$out" >>"$work/$name.times"
    done
}

# engine_run ENGINE ARGS...: rootless (pasta|slirp4netns) or podman `run ARGS`
engine_run() {
    local engine=$1
    shift
    case $engine in
    pasta | slirp4netns) ROOTLESS_NETWORK_HELPER=$engine "$venv/bin/rootless" run "$@" ;;
    podman) podman run "$@" ;;
    esac
}

engine_rm() {
    case $1 in
    pasta | slirp4netns) "$venv/bin/rootless" rm -f "$2" >/dev/null 2>&1 || true ;;
    podman) podman rm -f -t 0 "$2" >/dev/null 2>&1 || true ;;
    esac
}

net_engine() { # net_engine ENGINE: the three cases of one engine
    local e=$1 port loop=slirp:allow_host_loopback=true
    [[ $e == podman ]] && loop=slirp4netns:allow_host_loopback=true
    port=$(net_free_port)
    engine_run "$e" -d --name "bn-http-$e" -p "127.0.0.1:$port:80" "$IMAGE" sh -c \
        'mkdir /www && head -c 104857600 /dev/zero > /www/f && exec httpd -f -p 80 -h /www' \
        >>"$work/$e.log" 2>&1 && net_wait_http "http://127.0.0.1:$port/f" &&
        net_case "http-100M-$e" net_curl "http://127.0.0.1:$port/f"
    engine_rm "$e" "bn-http-$e"
    port=$(net_free_port)
    : >"$work/tcp-bulk-$e.times"
    for ((i = 0; i < net_runs; i++)); do
        engine_run "$e" -d --name "bn-tcp-$e" -p "127.0.0.1:$port:5001" "$IMAGE" sh -c \
            'head -c 1073741824 /dev/zero | nc -l -p 5001' >>"$work/$e.log" 2>&1 &&
            net_read "$port" >>"$work/tcp-bulk-$e.times" 2>>"$work/$e.log"
        engine_rm "$e" "bn-tcp-$e"
    done
    local addr='$(awk "/host.containers.internal/ {print \$1; exit}" /etc/hosts)'
    [[ $e == podman ]] && addr=10.0.2.2 # slirp4netns's host loopback (podman's hosts: the host's address)
    engine_run "$e" --rm --network "$loop" "$IMAGE" sh -c \
        "addr=$addr; for i in \$(seq $net_runs); do
             time -p wget -q -O /dev/null http://\$addr:$host_port/g 2>&1 |
                 awk '/^real/ {print \$2, 268435456}'
         done" >"$work/to-host-$e.times" 2>>"$work/$e.log"
    local case
    for case in http-100M tcp-bulk to-host; do # a case with no number: say why
        grep -q '^[0-9.]* [1-9]' "$work/$case-$e.times" 2>/dev/null ||
            echo "$case-$e: $(tail -n 2 "$work/$e.log" "$work/$case-$e.log" 2>/dev/null |
                tr '\n' ' ' | cut -c1-200)" >&2
    done
}

net_report() {
    "$venv/bin/python" - "$work" "$@" <<'PY'
import statistics, sys
work, engines = sys.argv[1], sys.argv[2:]
def gbits(name):
    try:
        rows = [l.split() for l in open(f"{work}/{name}.times")]
    except OSError:
        return None
    rates = [int(b) * 8 / float(s) / 1e9 for s, b in (r for r in rows if len(r) == 2)
             if float(s) > 0 and int(b) > 0]
    return statistics.median(rates) if rates else None
print(f"{'case':<12}" + "".join(f"{e:>14}" for e in engines) + "   ratios to podman")
for case in ("http-100M", "tcp-bulk", "to-host"):
    values = {e: gbits(f"{case}-{e}") for e in engines}
    base = values.get("podman")
    cells = "".join(f"{v:>10.2f} Gb/s" if v else f"{'n/a':>14}" for v in values.values())
    ratios = " ".join(f"{e}={v / base:.2f}x" for e, v in values.items()
                      if v and base and e != "podman")
    print(f"{case:<12}{cells}   {ratios}")
ceiling = gbits("loopback")
if ceiling:
    print(f"{'loopback':<12}{ceiling:>10.2f} Gb/s   (host curl from a host httpd: the ceiling)")
PY
}

bench_net_as_user() {
    venv=$1
    net_runs=${2:-3}
    ((net_runs > 5)) && net_runs=3 # the default 30 is for start-up times
    work=$(mktemp -d "${TMPDIR:-/tmp}/rootless-bench.XXXXXX")
    net_httpd=
    trap 'kill $net_httpd 2>/dev/null; cleanup' EXIT
    export HOME=$work/home
    mkdir -p "$HOME" "$work/www"
    "$venv/bin/python" "$repo/scripts/make-image" --tag "$IMAGE" \
        --oci-archive "$work/busybox.oci.tar" >/dev/null
    prepare_rootless
    head -c 104857600 /dev/zero >"$work/www/f"
    head -c 268435456 /dev/zero >"$work/www/g"
    host_port=$(net_free_port)
    busybox httpd -f -p "127.0.0.1:$host_port" -h "$work/www" 2>/dev/null &
    net_httpd=$!
    local engines=() e
    command -v pasta >/dev/null && engines+=(pasta)
    command -v slirp4netns >/dev/null && engines+=(slirp4netns)
    prepare_podman >"$work/podman.log" 2>&1 && engines+=(podman)
    for e in "${engines[@]}"; do
        say "network: $e"
        net_engine "$e"
    done
    net_wait_http "http://127.0.0.1:$host_port/f" &&
        net_case loopback net_curl "http://127.0.0.1:$host_port/f"
    net_report "${engines[@]}"
}
