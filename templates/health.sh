# shellcheck shell=bash
# Runs an app's health probe. Run with /usr/bin/bash (for its /dev/tcp: the pod's /usr is the
# host's), as root in the pod's root:
#
#   health.sh start APP START_MS INTERVAL_MS TIMEOUT_MS FAILURES PROBE...
#       podc-ready-APP.service, once the app runs: probes every INTERVAL_MS until a probe
#       passes, then starts the app's health timer and exits 0, so the apps after it start only
#       now. After START_MS without a passing probe it kills the app (SIGKILL: its start
#       failed, and its `restart` policy applies) and exits 1.
#   health.sh live APP START_MS INTERVAL_MS TIMEOUT_MS FAILURES PROBE...
#       The health timer's service: one probe; after FAILURES failed probes in a row it
#       restarts the app. Every failure and restart is a line in the journal.
#   health.sh probe APP PROBE...
#       One probe, run by the two above under `timeout` (TIMEOUT_MS).
#
# PROBE is one of
#   exec PROGRAM ARG...    run in the app's root, working directory and mount namespace, as
#                          the user and group of its main process; exit status 0 passes
#   http HOST PORT PATH [NAME VALUE]...
#                          GET http://HOST:PORT/PATH with the headers NAME: VALUE (each
#                          replaces podc's own Host, User-Agent or Connection line of its
#                          name, compared without case); a 2xx or 3xx status passes
#   https PROGRAM COMMAND HOST PORT PATH [NAME VALUE]...
#                          PROGRAM COMMAND (podc's `probe-https`, which the launcher binds into
#                          the pod) GETs https://HOST:PORT/PATH with the headers as Kubernetes'
#                          HTTPS probe does: any certificate accepted, redirects to the same
#                          host followed; a 2xx or 3xx status passes
#   tcp HOST PORT          a connection accepted passes
#   grpc PROGRAM COMMAND HOST PORT SERVICE
#                          PROGRAM COMMAND (podc's `probe-grpc`, which the launcher binds into
#                          the pod) calls grpc.health.v1.Health/Check for SERVICE at HOST:PORT
#                          over plaintext HTTP/2; the answer SERVING passes
#
# The app's health is kept in $PODC_HEALTH_DIR/APP (default /run/podc/health/APP) as
# "STATE FAILED", STATE one of starting, healthy, unhealthy (FAILED probes in a row),
# restarting, never-healthy; `podc status` shows it. PODC_HEALTH_DIR is for tests.

set -u
dir=${PODC_HEALTH_DIR:-/run/podc/health}
mode=$1
app=$2
shift 2

now_ms() { date +%s%3N; }
# Milliseconds as seconds for sleep and timeout: 1500 -> 1.500.
seconds() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
record() { mkdir -p "$dir" && echo "$1 $2" >"$dir/$app"; }

probe() {
    local kind=$1
    shift
    case $kind in
        exec)
            # The app's main process (looked up by the caller: systemctl's own time does not
            # count against the probe's timeout).
            local pid=${PODC_PROBE_PID:-} uid='' gid='' key value
            # (No awk: the pod's /etc has no alternatives links.)
            while read -r key value _; do
                case $key in
                    Uid:) uid=$value ;;
                    Gid:) gid=$value ;;
                esac
            done <"/proc/$pid/status" || exit 1
            if [ -z "$uid" ] || [ -z "$gid" ]; then
                echo "app $app is not running"
                exit 1
            fi
            exec nsenter -t "$pid" -m -r -w -S "$uid" -G "$gid" -- "$@"
            ;;
        http)
            local host=$1 port=$2 path=$3 line default name given='' names=' '
            shift 3
            # The headers are arguments, never text this script interprets; names are tokens
            # (no spaces) and values one line each (podc checked both).
            while [ $# -ge 2 ]; do
                given+="$1: $2"$'\r\n'
                names+="${1,,} "
                shift 2
            done
            local request="GET $path HTTP/1.0"$'\r\n'
            for default in "Host: $host" 'User-Agent: podc-health' 'Connection: close'; do
                name=${default%%:*}
                case $names in
                    *" ${name,,} "*) ;;
                    *) request+="$default"$'\r\n' ;;
                esac
            done
            request+="$given"$'\r\n'
            exec 3<>"/dev/tcp/$host/$port" || exit 1
            printf '%s' "$request" >&3
            IFS= read -r line <&3 || {
                echo "no answer from $host:$port"
                exit 1
            }
            line=${line%$'\r'}
            case $line in
                HTTP/*" "[23][0-9][0-9] | HTTP/*" "[23][0-9][0-9]" "*) exit 0 ;;
            esac
            echo "GET $path answered: $line"
            exit 1
            ;;
        https)
            # `--` first: a path, a header or its value may start with a dash.
            exec "$1" "$2" --timeout-ms "${PODC_PROBE_TIMEOUT_MS:-1000}" -- "${@:3}"
            ;;
        tcp)
            exec 3<>"/dev/tcp/$1/$2" || exit 1
            exit 0
            ;;
        grpc)
            # `--` first: a service name may start with a dash.
            exec "$1" "$2" --timeout-ms "${PODC_PROBE_TIMEOUT_MS:-1000}" -- "$3" "$4" "$5"
            ;;
    esac
    echo "unknown probe kind $kind"
    exit 2
}

if [ "$mode" = probe ]; then
    probe "$@"
fi

start_ms=$1 interval_ms=$2 timeout_ms=$3 failures=$4
shift 4

# One probe: its output (at most 2000 bytes), and its status as this function's.
out=
run_probe() {
    local rc
    if [ "$1" = exec ]; then
        PODC_PROBE_PID=$(systemctl show -p MainPID --value "$app.service")
        export PODC_PROBE_PID
    fi
    out=$(PODC_PROBE_TIMEOUT_MS=$timeout_ms timeout -k 1 "$(seconds "$timeout_ms")" \
        /usr/bin/bash "$0" probe "$app" "$@" 2>&1)
    rc=$?
    [ "$rc" = 124 ] && out="no answer within $(seconds "$timeout_ms") s"
    [ -n "$out" ] || out="exit status $rc"
    out=${out:0:2000}
    return "$rc"
}

case $mode in
    start)
        deadline=$(($(now_ms) + start_ms))
        record starting 0
        while :; do
            if run_probe "$@"; then
                record healthy 0
                echo "podc: app $app passed its health probe"
                systemctl --no-block start "podc-health-$app.timer"
                exit 0
            fi
            left=$((deadline - $(now_ms)))
            if [ "$left" -le 0 ]; then
                record never-healthy 0
                echo "podc: app $app did not pass its health probe within $(seconds "$start_ms") s, so it did not start: $out"
                systemctl kill --signal=SIGKILL "$app.service"
                exit 1
            fi
            [ "$left" -lt "$interval_ms" ] || left=$interval_ms
            sleep "$(seconds "$left")"
        done
        ;;
    live)
        state='' failed=0
        read -r state failed 2>/dev/null <"$dir/$app"
        [ "$state" = unhealthy ] || failed=0
        if run_probe "$@"; then
            [ "$state" = unhealthy ] && echo "podc: app $app passed its health probe again"
            record healthy 0
            exit 0
        fi
        failed=$((failed + 1))
        echo "podc: app $app failed its health probe ($failed of $failures in a row): $out"
        if [ "$failed" -lt "$failures" ]; then
            record unhealthy "$failed"
            exit 0
        fi
        record restarting 0
        echo "podc: restarting app $app: $failures failed health probes in a row"
        systemctl --no-block restart "$app.service"
        ;;
esac
