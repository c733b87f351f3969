#!/bin/bash
# The checks run inside a VM test host (systemd as PID 1), from the payload disk, by the image's
# podc-vm-payload.service. It installs podc from its .deb and pods with `podc install`, as the
# README says, and checks them through the generated host units and podc's operator commands. Every result is a line on the second serial port (/dev/ttyS1):
#   vm: ok NAME [what was seen]     a check that held
#   vm: FAIL NAME: what was seen     a check that did not
#   vm: value NAME=VALUE             a value read, for the note and the README
#   vm: time NAME=SECONDS            how long a step took
#   vm: json NAME JSON               a document tests/vm.rs parses and checks itself
#   vm: done                         the last line, after the reboot phase
# tests/vm.rs reads these lines. The first boot runs phase 1 and reboots; the second boot runs
# phase 2 (the enabled pod came back with the machine) and powers off.
set -u
P=/payload
# shellcheck source=/dev/null # written by run.sh
. "$P/host.env" # HOST, CGROUP (v1 or v2)
exec 3>/dev/ttyS1
STATE=/var/lib/podc-vm
mkdir -p "$STATE"

say() { echo "vm: $*" >&3; echo "vm: $*"; }
ok() { say "ok $*"; }
bad() { say "FAIL $*"; }
value() { say "value $1=$2"; }
# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', saw '$3'"; fi
}
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# wait_for SECONDS COMMAND...: polls until COMMAND succeeds; fails after SECONDS.
wait_for() {
    local limit=$1 t0
    shift
    t0=$(now)
    while ! "$@" >/dev/null 2>&1; do
        if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
            return 1
        fi
        sleep 0.5
    done
}
# Runs COMMAND, says how long it took as time NAME, and returns its status.
timed() {
    local name=$1 t0 rc
    shift
    t0=$(now)
    "$@"
    rc=$?
    say "time $name=$(since "$t0")"
    return $rc
}

SDVER=$(systemctl --version | awk 'NR == 1 { print $2 }')
FS=$(stat -fc %T /sys/fs/cgroup)
# v1: the cpu controller's own directory, co-mounted with cpuacct on Debian (cpu is a link).
CPU_HIERARCHY=cpu
[ -d /sys/fs/cgroup/cpu,cpuacct ] && ! [ -L /sys/fs/cgroup/cpu,cpuacct ] && CPU_HIERARCHY=cpu,cpuacct

# The pod's cgroup in one hierarchy (v2: the unified tree; v1: memory, cpu, pids, ...).
pod_cg() {
    if [ "$CGROUP" = v2 ]; then echo "/sys/fs/cgroup/machine.slice/podc-$1.service"; else
        echo "/sys/fs/cgroup/$2/machine.slice/podc-$1.service"
    fi
}
# An app's cgroup below the pod's, found rather than assumed (nspawn may add a level).
app_cg() { find "$(pod_cg "$1" "${3:-}")" -type d -name "$2.service" 2>/dev/null | head -n 1; }
knob() { cat "$1/$2" 2>/dev/null || echo "(missing $1/$2)"; }
# The number of lines of the app's output with exactly TEXT in the pod's journal, all runs.
app_lines() { journalctl -M "podc-$1" -u "$2.service" -o cat --no-pager 2>/dev/null | grep -cx "$3"; }
lines_at_least() { [ "$(app_lines "$1" "$2" "$3")" -ge "$4" ]; }
journal_has() { journalctl -M "podc-$1" -u "$2.service" --no-pager 2>/dev/null | grep -q "$3"; }
# Processes whose root directory is inside the installed pod (its container and apps).
pod_processes() {
    local p n=0
    for p in /proc/[0-9]*; do
        case "$(readlink "$p/root" 2>/dev/null)" in /var/lib/podc/"$1"/*) n=$((n + 1)) ;; esac
    done
    echo "$n"
}
# The pid of a process in an app's cgroup whose command line contains WORD.
proc_in() {
    local p
    while read -r p; do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "$2" && { echo "$p"; return 0; }
    done <"$1/cgroup.procs"
    return 1
}
state_is() { [ "$(systemctl is-active "podc-$1")" = "$2" ]; }
prop() { systemctl show -p "$2" --value "podc-$1"; }

build_pod() { # NAME: build from the payload's manifest for this host
    podc build "$P/pods/$1.yaml" -o /root/build --cgroup "$CGROUP" --systemd "$SDVER" >/dev/null ||
        { bad "build-$1: podc build failed"; return 1; }
}
install_pod() { # NAME [podc install flags]: build and install as the README says
    local name=$1 out
    shift
    build_pod "$name" || return 1
    if out=$(podc install "/root/build/$name" "$@" 2>&1); then ok "podc-install-$name $* (${out//$'\n'/ })"; else
        bad "podc-install-$name $*: $out"; return 1
    fi
}
# The two host units of a pod in /etc/systemd/system, as a count.
units_of() { find /etc/systemd/system -maxdepth 1 -name "podc-$1.*" | wc -l; }

# The body of GET / from 127.0.0.1:PORT (the VM has no network device: loopback only), with
# bash's /dev/tcp (the static busybox's wget crashes in its resolver).
# shellcheck disable=SC2016 # $1 is expanded by the inner bash
# An optional second argument is the timeout in seconds (default 20).
get() {
    timeout "${2:-20}" bash -c 'exec 5<>"/dev/tcp/127.0.0.1/$1" && printf "GET / HTTP/1.0\r\n\r\n" >&5 && cat <&5' get "$1" |
        sed '1,/^\r$/d'
}
# Whether anything accepts a connection on 127.0.0.1:PORT.
# shellcheck disable=SC2016 # $1 is expanded by the inner bash
port_open() { timeout 5 bash -c 'exec 5<>"/dev/tcp/127.0.0.1/$1"' port_open "$1" 2>/dev/null; }

# A private pod started by the first connection to its published port, through the host's
# socket unit; then stopped, leaving nothing (no process, cgroup, mount, machine or listener).
check_network() {
    install_pod web || return
    if timed start-web-socket systemctl enable --now podc-web.socket; then ok "enable-now-web-socket returned 0"; else bad "enable-now-web-socket: systemctl failed"; fi
    check web-socket-active active "$(systemctl is-active podc-web.socket)"
    check web-not-started-before-a-connection inactive "$(systemctl is-active podc-web.service)"
    local t0 answer
    t0=$(now)
    # The first connection waits for the whole pod to start (under TCG, with three hosts on two
    # cores, 20.7 s once on Debian 13): 60 s.
    answer=$(get 18080 60 2>&1)
    say "time first-connection=$(since "$t0")"
    if [ "$answer" = "hello from the pod" ]; then ok "web-first-connection-answer ($answer)"; else
        bad "web-first-connection-answer: saw '$answer'; $(systemctl status podc-web.socket podc-web.service --no-pager 2>&1 | tail -n 20 | tr '\n' '|') journal: $(journalctl -u podc-web.service -u podc-web.socket -n 40 --no-pager 2>&1 | tr '\n' '|')"
    fi
    check web-started-by-the-connection active "$(systemctl is-active podc-web.service)"
    # 50 more in this shell with builtins only (no process per request), timed together.
    local n=0 line last
    t0=$(now)
    for _ in $(seq 50); do
        exec 5<>/dev/tcp/127.0.0.1/18080 || continue
        printf 'GET / HTTP/1.0\r\n\r\n' >&5
        last=
        while IFS= read -r line <&5; do last=$line; done
        exec 5<&-
        [ "$last" = "hello from the pod" ] && n=$((n + 1))
    done
    say "time steady-50-requests=$(since "$t0")"
    check web-steady-answers 50 "$n"
    # The pod's own network: loopback only, and its app's port is not on the host.
    local leader
    leader=$(machinectl show podc-web -p Leader --value 2>/dev/null)
    # /proc/PID/net/dev lists the interfaces of PID's network namespace (two header lines).
    check web-pod-interfaces 1 "$(($(wc -l <"/proc/$leader/net/dev") - 2))"
    if port_open 8080; then bad "web-inner-port-not-on-host: 127.0.0.1:8080 answers on the host"; else ok web-inner-port-not-on-host; fi
    timed stop-web systemctl stop podc-web.socket podc-web.service
    check web-socket-stopped inactive "$(systemctl is-active podc-web.socket)"
    check_nothing_left web stop-web
    if port_open 18080; then bad "web-port-closed-after-stop: still answers"; else ok web-port-closed-after-stop; fi
    systemctl disable podc-web.socket 2>/dev/null
}

# podc status, logs and a reinstall of the running pod main (installed with --now).
check_operator() {
    local out rc row
    # The table: each app active, with the manifest's limits read back from its cgroup.
    out=$(podc status main 2>&1)
    say "$(printf '%s\n' "$out" | sed 's/^/status | /')"
    if printf '%s\n' "$out" | head -n 1 | grep -q '^pod main: active (running)'; then ok "status-host-active"; else bad "status-host-active: ${out//$'\n'/|}"; fi
    row=$(printf '%s\n' "$out" | awk '$1 == "web"')
    if [[ $row == *"active (running)"* && $row == *"/ 64 MiB"* && $row == *" 0.50 "* && $row == *"/ 32" ]]; then
        ok "status-web-row ($row)"
    else bad "status-web-row: '$row'"; fi
    row=$(printf '%s\n' "$out" | awk '$1 == "worker"')
    if [[ $row == *"active (running)"* && $row == *"/ 48 MiB"* && $row == *" 0.25 "* && $row == *"/ 16" ]]; then
        ok "status-worker-row ($row)"
    else bad "status-worker-row: '$row'"; fi
    # The JSON on one line, for tests/vm.rs to parse and check.
    if out=$(podc status main --json 2>&1); then say "json status-main $(printf '%s' "$out" | tr -d '\n')"; ok "status-json-exit-0"; else
        bad "status-json-exit-0: $out"
    fi
    # logs: the app's own output only.
    out=$(podc logs main web 2>&1)
    if printf '%s\n' "$out" | grep -q 'web up' && ! printf '%s\n' "$out" | grep -q 'worker up'; then
        ok "logs-main-web ($(printf '%s\n' "$out" | grep -c 'web up') web up lines, no worker lines)"
    else bad "logs-main-web: $(printf '%s\n' "$out" | tail -n 5 | tr '\n' '|')"; fi
    # A reinstall of the running pod is refused, changes nothing, and with --restart happens.
    local id pid
    id=$(cat /var/lib/podc/main/rootfs/etc/machine-id)
    pid=$(prop main MainPID)
    out=$(podc install /root/build/main 2>&1)
    rc=$?
    if [ "$rc" = 2 ] && [[ $out == *"pod main is running"* ]]; then ok "reinstall-running-refused ($out)"; else bad "reinstall-running-refused: rc $rc: $out"; fi
    check reinstall-refused-pod-untouched "$pid" "$(prop main MainPID)"
    if timed reinstall-restart podc install /root/build/main --restart >/dev/null 2>&1; then ok "reinstall-restart returned 0"; else bad "reinstall-restart: failed"; fi
    check reinstall-restart-active active "$(systemctl is-active podc-main)"
    if [ "$(prop main MainPID)" != "$pid" ]; then ok "reinstall-restart-new-process"; else bad "reinstall-restart-new-process: same MainPID $pid"; fi
    check reinstall-machine-id-kept "$id" "$(cat /var/lib/podc/main/rootfs/etc/machine-id)"
    if wait_for 120 lines_at_least main web "web up" 3; then ok "reinstall-journal-kept (web up 3 times)"; else
        bad "reinstall-journal-kept: web up $(app_lines main web "web up") times"
    fi
    check reinstall-no-leftover-staging 0 "$(find /var/lib/podc -maxdepth 1 -name '.podc-install-*' | wc -l)"
}

# podc uninstall of a running pod: the web pod installed with --now (its socket), started by a
# connection, then uninstalled: no unit, install directory, process, cgroup, mount, machine or
# listener is left.
check_uninstall_running() {
    install_pod web --now || return
    check web-now-socket-active active "$(systemctl is-active podc-web.socket)"
    check web-now-socket-enabled enabled "$(systemctl is-enabled podc-web.socket)"
    local answer out
    answer=$(get 18080 2>&1)
    check web-now-answer "hello from the pod" "$answer"
    check web-now-running active "$(systemctl is-active podc-web.service)"
    if out=$(timed uninstall-web podc uninstall web 2>&1); then ok "uninstall-web returned 0"; else bad "uninstall-web: $out"; fi
    check uninstall-web-units 0 "$(units_of web)"
    if [ -e /var/lib/podc/web ]; then bad "uninstall-web-dir: /var/lib/podc/web is still there"; else ok "uninstall-web-dir"; fi
    check_nothing_left web uninstall-web
    if port_open 18080; then bad "uninstall-web-port-closed: still answers"; else ok uninstall-web-port-closed; fi
    check uninstall-web-unit-unknown inactive "$(systemctl is-active podc-web.socket)"
    out=$(podc status web 2>&1)
    if [[ $out == *"pod web is not installed"* ]]; then ok "status-after-uninstall ($out)"; else bad "status-after-uninstall: $out"; fi
}

# The README's quick start, command for command, with the example manifest the package ships
# (on a v2 host: the example targets the default, cgroup v2).
check_quick_start() {
    if [ "$CGROUP" != v2 ]; then ok "quick-start-not-on-v1 (the example targets cgroup v2)"; return; fi
    local img=/var/lib/podc/images/hello out answer
    mkdir -p "$img/bin" "$img/www"
    cp "$P/busybox" "$img/bin/"
    echo 'hello from a pod' >"$img/www/index.html"
    cp /usr/share/doc/podc/examples/hello.yaml /root/hello.yaml
    if out=$(cd /root && podc check --deny-warnings hello.yaml 2>&1); then ok quick-start-check; else bad "quick-start-check: $out"; fi
    if out=$(cd /root && podc build hello.yaml -o build 2>&1); then ok quick-start-build; else bad "quick-start-build: $out"; return; fi
    check quick-start-pod-md "# Pod hello" "$(sed -n 2p /root/build/hello/POD.md)"
    if out=$(timed quick-start-install podc install /root/build/hello --now 2>&1); then ok quick-start-install; else bad "quick-start-install: $out"; return; fi
    wait_for 10 port_open 8080
    answer=$(get 8080 2>&1)
    check quick-start-answer "hello from a pod" "$answer"
    out=$(podc status hello 2>&1)
    if [[ $out == *web*active* ]]; then ok "quick-start-status"; else bad "quick-start-status: ${out//$'\n'/|}"; fi
    if out=$(podc logs hello web 2>&1 </dev/null); then ok quick-start-logs; else bad "quick-start-logs: ${out//$'\n'/|}"; fi
    if out=$(podc uninstall hello 2>&1); then ok quick-start-uninstall; else bad "quick-start-uninstall: $out"; fi
    check_nothing_left hello quick-start
}

# The pod's limits and each app's, in the host's cgroup files.
check_limits() {
    local m=$1 web worker
    if [ "$CGROUP" = v2 ]; then
        local pod
        pod=$(pod_cg "$m")
        check "pod-memory.max" 536870912 "$(knob "$pod" memory.max)"
        check "pod-cpu.max" "100000 100000" "$(knob "$pod" cpu.max)"
        check "pod-cpu.weight" 200 "$(knob "$pod" cpu.weight)"
        check "pod-pids.max" 256 "$(knob "$pod" pids.max)"
        web=$(app_cg "$m" web)
        worker=$(app_cg "$m" worker)
        value web-cgroup "${web:-none}"
        check "web-memory.max" 67108864 "$(knob "$web" memory.max)"
        check "web-cpu.max" "50000 100000" "$(knob "$web" cpu.max)"
        check "web-cpu.weight" 50 "$(knob "$web" cpu.weight)"
        check "web-pids.max" 32 "$(knob "$web" pids.max)"
        check "worker-memory.max" 50331648 "$(knob "$worker" memory.max)"
        check "worker-cpu.max" "25000 100000" "$(knob "$worker" cpu.max)"
        check "worker-cpu.weight" 100 "$(knob "$worker" cpu.weight)"
        check "worker-pids.max" 16 "$(knob "$worker" pids.max)"
    else
        local cpu=$CPU_HIERARCHY
        value cpu-hierarchy "$cpu"
        check "pod-memory.limit_in_bytes" 536870912 "$(knob "$(pod_cg "$m" memory)" memory.limit_in_bytes)"
        check "pod-cpu.cfs_quota_us" 100000 "$(knob "$(pod_cg "$m" "$cpu")" cpu.cfs_quota_us)"
        check "pod-cpu.cfs_period_us" 100000 "$(knob "$(pod_cg "$m" "$cpu")" cpu.cfs_period_us)"
        check "pod-cpu.shares" 2048 "$(knob "$(pod_cg "$m" "$cpu")" cpu.shares)"
        check "pod-pids.max" 256 "$(knob "$(pod_cg "$m" pids)" pids.max)"
        web=$(app_cg "$m" web memory)
        value web-cgroup "${web:-none}"
        check "web-memory.limit_in_bytes" 67108864 "$(knob "$web" memory.limit_in_bytes)"
        check "web-cpu.cfs_quota_us" 50000 "$(knob "$(app_cg "$m" web "$cpu")" cpu.cfs_quota_us)"
        check "web-cpu.shares" 512 "$(knob "$(app_cg "$m" web "$cpu")" cpu.shares)"
        check "web-pids.max" 32 "$(knob "$(app_cg "$m" web pids)" pids.max)"
        worker=$(app_cg "$m" worker memory)
        check "worker-memory.limit_in_bytes" 50331648 "$(knob "$worker" memory.limit_in_bytes)"
        check "worker-cpu.cfs_quota_us" 25000 "$(knob "$(app_cg "$m" worker "$cpu")" cpu.cfs_quota_us)"
        check "worker-cpu.shares" 1024 "$(knob "$(app_cg "$m" worker "$cpu")" cpu.shares)"
        check "worker-pids.max" 16 "$(knob "$(app_cg "$m" worker pids)" pids.max)"
    fi
    # Each app's processes in its own cgroup: its sleep is there, and only there.
    local wp kp
    wp=$(proc_in "$web" "sleep 3600")
    kp=$(proc_in "$worker" "sleep 3600")
    if [ -n "$wp" ] && [ -n "$kp" ] && [ "$wp" != "$kp" ] && grep -q "/web.service$" "/proc/$wp/cgroup" &&
        grep -q "/worker.service$" "/proc/$kp/cgroup"; then
        ok "apps-in-own-cgroups (web pid $wp, worker pid $kp)"
    else
        bad "apps-in-own-cgroups: web '$wp' in $web, worker '$kp' in $worker"
    fi
}

check_live_properties() {
    local m=$1
    systemctl set-property --runtime "podc-$m" MemoryMax=300M CPUQuota=150% TasksMax=100 ||
        bad "set-property: systemctl failed"
    if [ "$CGROUP" = v2 ]; then
        local pod
        pod=$(pod_cg "$m")
        check "set-property-memory.max" 314572800 "$(knob "$pod" memory.max)"
        check "set-property-cpu.max" "150000 100000" "$(knob "$pod" cpu.max)"
        check "set-property-pids.max" 100 "$(knob "$pod" pids.max)"
    else
        local cpu=$CPU_HIERARCHY
        check "set-property-memory.limit_in_bytes" 314572800 "$(knob "$(pod_cg "$m" memory)" memory.limit_in_bytes)"
        check "set-property-cpu.cfs_quota_us" 150000 "$(knob "$(pod_cg "$m" "$cpu")" cpu.cfs_quota_us)"
        check "set-property-pids.max" 100 "$(knob "$(pod_cg "$m" pids)" pids.max)"
    fi
}

# After a stop: no process, no cgroup, no mount, no machine registration (given 10 s to go).
leftovers() {
    local m=$1 left="" d
    [ "$(pod_processes "$m")" = 0 ] || left="$left processes:$(pod_processes "$m")"
    for d in /sys/fs/cgroup/machine.slice/podc-"$m".service /sys/fs/cgroup/*/machine.slice/podc-"$m".service; do
        [ -e "$d" ] && left="$left cgroup:$d"
    done
    grep -q "/var/lib/podc/$m" /proc/self/mountinfo && left="$left mounts"
    machinectl list --no-legend 2>/dev/null | grep -q "podc-$m" && left="$left machine"
    echo "$left"
}
nothing_left() { [ -z "$(leftovers "$1")" ]; }
check_nothing_left() {
    if wait_for 10 nothing_left "$1"; then ok "$2-nothing-left"; else bad "$2-nothing-left:$(leftovers "$1")"; fi
}

# Job pods: apps that end by themselves, at once or later. `systemctl start` returns and the
# pod ends inactive with Result=success, or failed with the app's status.
check_jobs() {
    local rc
    install_pod job-ok || return
    timed start-job-ok systemctl start podc-job-ok
    rc=$?
    check job-ok-start-returned 0 "$rc"
    if wait_for 60 state_is job-ok inactive; then ok "job-ok-inactive"; else bad "job-ok-inactive: $(systemctl is-active podc-job-ok)"; fi
    check job-ok-result success "$(prop job-ok Result)"
    check job-ok-status 0 "$(prop job-ok ExecMainStatus)"
    check job-ok-app-ran 1 "$(podc logs job-ok first 2>&1 | grep -cx '.*first done')"
    check_nothing_left job-ok job-ok

    install_pod job-fail || return
    timed start-job-fail systemctl start podc-job-fail
    rc=$?
    # 0 if the pod's systemd finished starting before the app failed (it then said READY=1),
    # else the failure: either way `systemctl start` returned, and the pod ends failed.
    value job-fail-start-status "$rc"
    if wait_for 60 state_is job-fail failed; then ok "job-fail-failed"; else bad "job-fail-failed: $(systemctl is-active podc-job-fail)"; fi
    check job-fail-result exit-code "$(prop job-fail Result)"
    check job-fail-status 5 "$(prop job-fail ExecMainStatus)"
    check_nothing_left job-fail job-fail
    systemctl reset-failed podc-job-fail

    install_pod job-later || return
    timed start-job-later systemctl start podc-job-later
    rc=$?
    check job-later-start-returned 0 "$rc"
    # Active unless the pod's systemd took the app's 5 s to finish starting (TCG is slow).
    value job-later-state-after-start "$(systemctl is-active podc-job-later)"
    if wait_for 60 state_is job-later inactive; then ok "job-later-inactive"; else bad "job-later-inactive: $(systemctl is-active podc-job-later)"; fi
    check job-later-result success "$(prop job-later Result)"
    check job-later-app-done 1 "$(podc logs job-later slow 2>&1 | grep -cx '.*slow done')"
    check_nothing_left job-later job-later
}

# Init apps: `systemctl start` returns once the init app has completed, the app after it
# finds what the init app left, and the pod ends inactive; an init app that fails keeps the
# app after it from ever starting, and the pod ends failed with its status. From systemd 254
# (RestartMode=direct) an init app that restarts on-failure is retried while the app after it
# waits.
check_init() {
    local rc
    install_pod init-ok || return
    timed start-init-ok systemctl start podc-init-ok
    rc=$?
    check init-ok-start-returned 0 "$rc"
    if wait_for 60 state_is init-ok inactive; then ok "init-ok-inactive"; else bad "init-ok-inactive: $(systemctl is-active podc-init-ok)"; fi
    check init-ok-result success "$(prop init-ok Result)"
    check init-ok-migrate-done 1 "$(podc logs init-ok migrate 2>&1 | grep -cx '.*migrate done')"
    check init-ok-web-after-it 1 "$(podc logs init-ok web 2>&1 | grep -cx '.*web found migrated')"
    check_nothing_left init-ok init-ok

    install_pod init-fail || return
    timed start-init-fail systemctl start podc-init-fail
    rc=$?
    value init-fail-start-status "$rc"
    if wait_for 60 state_is init-fail failed; then ok "init-fail-failed"; else bad "init-fail-failed: $(systemctl is-active podc-init-fail)"; fi
    check init-fail-result exit-code "$(prop init-fail Result)"
    check init-fail-status 3 "$(prop init-fail ExecMainStatus)"
    check init-fail-web-never-started 0 "$(podc logs init-fail web 2>&1 | grep -c 'web started')"
    check_nothing_left init-fail init-fail
    systemctl reset-failed podc-init-fail

    [ "$SDVER" -ge 254 ] || return 0
    install_pod init-retry || return
    timed start-init-retry systemctl start podc-init-retry
    rc=$?
    check init-retry-start-returned 0 "$rc"
    if wait_for 60 state_is init-retry inactive; then ok "init-retry-inactive"; else bad "init-retry-inactive: $(systemctl is-active podc-init-retry)"; fi
    check init-retry-result success "$(prop init-retry Result)"
    check init-retry-fetch-tries 2 "$(podc logs init-retry fetch 2>&1 | grep -cx '.*fetch try')"
    check init-retry-report-ran 1 "$(podc logs init-retry report 2>&1 | grep -cx '.*report done')"
    check_nothing_left init-retry init-retry
}

# Health probes on a real host: `systemctl start` waits for web's first passing probe (2 s),
# `podc status` shows the apps healthy, flaky is restarted once its probe fails, and web's
# lifecycle hooks run at its start and stop.
check_health() {
    local t0 took out
    install_pod health || return
    t0=$(now)
    if systemctl start podc-health; then ok "health-start returned 0"; else bad "health-start: systemctl failed"; fi
    took=$(since "$t0")
    say "time start-health=$took"
    if awk -v t="$took" 'BEGIN { exit !(t >= 2) }'; then ok "health-start-waited-for-probe ($took s)"; else
        bad "health-start-waited-for-probe: returned after $took s"
    fi
    out=$(podc status health 2>&1)
    if printf '%s\n' "$out" | awk '$1 == "web" && /healthy/' | grep -q .; then ok "health-status-web-healthy"; else
        bad "health-status-web-healthy: ${out//$'\n'/|}"
    fi
    if wait_for 120 journal_has health podc-health-flaky "restarting app flaky"; then ok "health-flaky-restarted"; else
        bad "health-flaky-restarted: $(journalctl -M podc-health -u podc-ready-flaky.service -u podc-health-flaky.service -o cat --no-pager 2>&1 | tail -n 5 | tr '\n' '|')"
    fi
    if wait_for 30 lines_at_least health flaky "flaky up" 2; then ok "health-flaky-started-again"; else
        bad "health-flaky-started-again: flaky up $(app_lines health flaky "flaky up") times"
    fi
    timed stop-health systemctl stop podc-health
    check health-stopped inactive "$(systemctl is-active podc-health)"
    # web's hooks ran in its unit, with its MAINPID: postStart at the start, preStop at the stop.
    check health-web-post-start 1 "$(podc logs health web 2>&1 | grep -cx '.*post-start main=set')"
    check health-web-pre-stop 1 "$(podc logs health web 2>&1 | grep -cx '.*pre-stop main=set')"
    check_nothing_left health health
}

# Persistent and memory volumes and a cpu request: the volume is made as declared and keeps
# its file across `podc install --restart` (and, in phase 2, a reboot); the memory volume is a
# tmpfs of 1 MiB; 250m gives the kubelet's weight (v2 cpu.weight 10, v1 cpu.shares 256).
VOL=/var/lib/podc/volumes/data/state
runs() { wc -l <"$VOL/runs" 2>/dev/null || echo 0; }
runs_at_least() { [ "$(runs)" -ge "$1" ]; }
check_data() {
    install_pod data --now || return
    if wait_for 60 runs_at_least 1; then ok "data-first-run"; else bad "data-first-run: $(runs) runs"; fi
    # The pod runs in its own user namespace (podc's default): its uid 1000 is its range's
    # base + 1000 on the host.
    local base
    base=$(cat /var/lib/podc/data/state/userns 2>/dev/null || echo 0)
    check data-volume-made "750 $((base + 1000)) $((base + 1000))" "$(stat -c '%a %u %g' "$VOL")"
    if [ "$base" -ge $((0x70000000)) ]; then ok "data-own-users ($base)"; else bad "data-own-users: base '$base'"; fi
    if journal_has data app "tmpfs /scratch tmpfs .*size=1024k"; then ok "data-memory-volume-1MiB"; else
        bad "data-memory-volume-1MiB: $(journalctl -M podc-data -u app.service -o cat --no-pager 2>&1 | grep scratch | tr '\n' '|')"
    fi
    if [ "$CGROUP" = v2 ]; then
        check data-cpu-request-weight 10 "$(knob "$(app_cg data app)" cpu.weight)"
    else
        check data-cpu-request-shares 256 "$(knob "$(app_cg data app "$CPU_HIERARCHY")" cpu.shares)"
    fi
    if [ "$CGROUP" = v2 ]; then
        install_pod low --now || return
        check low-memory-request-memory.low 33554432 "$(knob "$(app_cg low app)" memory.low)"
        podc uninstall low >/dev/null 2>&1 || bad "low-uninstall: failed"
    fi
    podc install /root/build/data --restart >/dev/null 2>&1 || bad "data-reinstall-restart: failed"
    if wait_for 60 runs_at_least 2; then ok "data-kept-across-restart (2 runs)"; else bad "data-kept-across-restart: $(runs) runs"; fi
}

# A config item and a secret through the host unit: the app reads the secret as a file and as
# a variable (they agree) and the config's key; the secret's bytes are nowhere in the tree, the
# host's journal or the pod's, or the host unit's files.
check_secret() {
    local token=vm-secret-$RANDOM$RANDOM
    mkdir -p /etc/podc-vm && (umask 077 && printf '%s\n' "$token" >/etc/podc-vm/token)
    install_pod secret --now || return
    if wait_for 60 journal_has secret reader "token agrees"; then ok "secret-file-and-variable-agree"; else
        bad "secret-file-and-variable-agree: $(journalctl -M podc-secret -u reader.service -o cat --no-pager 2>&1 | tail -n 3 | tr '\n' '|')"
    fi
    if journal_has secret reader "hello from config"; then ok "secret-config-key"; else bad "secret-config-key: not in the journal"; fi
    local found
    # /etc/podc-vm holds the secret: the search must find it there (and only there).
    found=$( (grep -rl -- "$token" /etc/podc-vm /var/lib/podc/secret /etc/systemd/system/podc-secret.* /root/build/secret 2>/dev/null
        journalctl -o export --no-pager 2>/dev/null | grep -c -- "$token" | grep -v '^0$'
        journalctl -M podc-secret -o export --no-pager 2>/dev/null | grep -c -- "$token" | grep -v '^0$') | tr '\n' ' ')
    check secret-bytes-nowhere "/etc/podc-vm/token " "$found"
    timed stop-secret systemctl stop podc-secret
    check secret-stopped inactive "$(systemctl is-active podc-secret)"
    rm -f /etc/podc-vm/token
    if systemctl start podc-secret 2>/dev/null; then bad "secret-missing-refused: the pod started"; else ok "secret-missing-refused"; fi
    if journalctl -u podc-secret.service --no-pager -o cat 2>/dev/null | grep -q "secret token: /etc/podc-vm/token"; then ok "secret-missing-says-which"; else
        bad "secret-missing-says-which: $(journalctl -u podc-secret.service --no-pager -o cat | tail -n 2 | tr '\n' '|')"
    fi
    podc uninstall secret >/dev/null 2>&1 || bad "secret-uninstall: failed"
}

# A pod written as Kubernetes YAML (tests/vm/pods/kube.yaml): built, installed and started as
# the README says; the init container ran first, the sidecar beside the containers, the page
# comes from the ConfigMap through the published port, and the recorder saw its variables
# ($(POD_NAME) expanded), its user and fsGroup, and the init container's file.
check_kube() {
    install_pod kube --now || return
    if wait_for 60 port_open 18090; then ok "kube-port-open"; else bad "kube-port-open: $(systemctl status podc-kube 2>&1 | tail -n 3 | tr '\n' '|')"; return; fi
    # The host's socket listens at once; the page comes once the pod has started (slow hosts).
    kube_page() { [ "$(get 18090 | tr -d '\r')" = "kube guestbook" ]; }
    if wait_for 90 kube_page; then ok "kube-page"; else bad "kube-page: saw '$(get 18090 | tr -d '\r')'"; fi
    if wait_for 60 journal_has kube recorder "kube reads hosts from env"; then ok "kube-recorder-variables"; else
        bad "kube-recorder-variables: $(podc logs kube recorder 2>&1 | tail -n 2 | tr '\n' '|')"
    fi
    check kube-recorder-line 1 "$(podc logs kube recorder 2>&1 | grep -c 'kube reads hosts from env as 1000:1000,2000, setup done')"
    check kube-init-ran 1 "$(podc logs kube setup 2>&1 | grep -c 'setup done')"
    if journal_has kube logship "logship up"; then ok "kube-sidecar-up"; else bad "kube-sidecar-up: not in the journal"; fi
    check kube-active active "$(systemctl is-active podc-kube)"
    timed stop-kube systemctl stop podc-kube
    check_nothing_left kube kube
    podc uninstall kube >/dev/null 2>&1 || bad "kube-uninstall: failed"
}

# #28: a tree is held to the host's cgroup layout and systemd. A tree for the other layout (a
# v1 tree on a v2 host; a v2 tree whose app has limits on the hybrid host) and one for a newer
# systemd are refused by `podc install` and `podc launch --check`, naming the build that fits,
# and nothing is installed; an older systemd target is a warning.
check_target() {
    local other=v1 newer out rc fits="podc build --cgroup $CGROUP --systemd $SDVER "
    [ "$CGROUP" = v1 ] && other=v2
    newer=$((SDVER + 5))
    # cgroup v1 ends with systemd 258.
    [ "$CGROUP" = v1 ] && [ "$newer" -ge 258 ] && newer=257
    local -a cases=("$other:$SDVER:cgroup $other, systemd $SDVER, but this host has")
    [ "$newer" -gt "$SDVER" ] && cases+=("$CGROUP:$newer:the pod boots this host's systemd $SDVER, which ignores")
    local c cg sd says
    for c in "${cases[@]}"; do
        cg=${c%%:*} sd=${c#*:} says=${sd#*:} sd=${sd%%:*}
        rm -rf /root/build-target
        if ! podc build "$P/pods/held.yaml" -o /root/build-target --cgroup "$cg" --systemd "$sd" >/dev/null 2>&1; then
            bad "target-$cg-$sd-build: podc build failed"; continue
        fi
        out=$(podc install /root/build-target/held 2>&1)
        rc=$?
        if [ "$rc" = 2 ] && [[ $out == *"$says"* && $out == *"\`$fits"* && $out == *"nothing was installed"* ]]; then
            ok "target-$cg-$sd-install-refused (${out//$'\n'/ })"
        else bad "target-$cg-$sd-install-refused: rc $rc: ${out//$'\n'/|}"; fi
        check "target-$cg-$sd-no-units" 0 "$(units_of held)"
        if [ -e /var/lib/podc/held ]; then bad "target-$cg-$sd-no-dir: /var/lib/podc/held exists"; else ok "target-$cg-$sd-no-dir"; fi
        out=$(podc launch --check /root/build-target/held 2>&1)
        rc=$?
        if [ "$rc" = 2 ] && [[ $out == *"$says"* ]]; then ok "target-$cg-$sd-check-refused"; else
            bad "target-$cg-$sd-check-refused: rc $rc: ${out//$'\n'/|}"
        fi
    done
    # A tree for an older systemd than this host's: launch --check warns and passes.
    if [ "$SDVER" -gt 252 ]; then
        rm -rf /root/build-target
        podc build "$P/pods/held.yaml" -o /root/build-target --cgroup "$CGROUP" --systemd 252 >/dev/null 2>&1
        out=$(podc launch --check /root/build-target/held 2>&1)
        rc=$?
        if [ "$rc" = 0 ] && [[ $out == *"warning: "*"keeps every setting podc writes for 252"* ]]; then ok "target-older-systemd-warns"; else
            bad "target-older-systemd-warns: rc $rc: ${out//$'\n'/|}"
        fi
    fi
    rm -rf /root/build-target
}

# #28: a pod whose apps all restart has Restart=on-failure on its host unit: its init killed,
# systemd starts the pod again. podc exec runs a command in its app as the app runs.
check_restart() {
    local leader out
    install_pod held --now || return
    check restart-unit-policy on-failure "$(prop held Restart)"
    if wait_for 60 journal_has held svc "svc up"; then ok restart-svc-up; else bad "restart-svc-up: $(podc logs held svc 2>&1 | tail -n 3 | tr '\n' '|')"; return; fi
    # shellcheck disable=SC2016 # the app's shell expands it
    out=$(podc exec held svc -- /bin/sh -c 'id -u; id -g; echo "$GREETING"; hostname' 2>&1)
    check exec-as-the-app "1000|1000|hello from svc|podc-held" "${out//$'\n'/|}"
    out=$(podc exec held svc -- /bin/sh -c 'exit 7' 2>&1)
    check exec-exit-status 7 "$?"
    leader=$(machinectl show podc-held -p Leader --value)
    kill -KILL "$leader"
    if wait_for 60 lines_at_least held svc "svc up" 2 && wait_for 30 state_is held active; then
        ok "restart-after-init-killed (NRestarts=$(prop held NRestarts))"
    else bad "restart-after-init-killed: $(systemctl is-active podc-held), NRestarts=$(prop held NRestarts)"; fi
    check restart-counted 1 "$(prop held NRestarts)"
    # A stop is never followed by a restart.
    timed stop-held systemctl stop podc-held
    sleep 2
    check restart-not-after-stop inactive "$(systemctl is-active podc-held)"
    check_nothing_left held restart
    podc uninstall held >/dev/null 2>&1 || bad "restart-uninstall: failed"
}

# The README's launch by hand on a systemd host: a delegated scope of its own below
# machine.slice, where the app's limits are set and a pod-level limit given as a property;
# podc exec and podc logs reach the pod by its name; SIGTERM ends it, leaving nothing.
check_by_hand() {
    local pid scope=podc-held-by-hand.scope cg app out
    install_pod held || return
    systemd-run --quiet --scope --unit podc-held-by-hand --slice machine.slice -p Delegate=yes -p TasksMax=64 \
        podc launch /var/lib/podc/held >/root/by-hand.log 2>&1 &
    pid=$!
    by_hand_up() { podc logs held svc 2>/dev/null | grep -q 'svc up'; }
    if wait_for 90 by_hand_up; then ok by-hand-up; else bad "by-hand-up: $(tail -n 5 /root/by-hand.log | tr '\n' '|')"; kill -TERM "$pid"; return; fi
    if [ "$CGROUP" = v2 ]; then cg=/sys/fs/cgroup/machine.slice/$scope; else cg=/sys/fs/cgroup/memory/machine.slice/$scope; fi
    app=$(find "$cg" -type d -name svc.service 2>/dev/null | head -n 1)
    if [ "$CGROUP" = v2 ]; then
        check by-hand-app-memory.max 33554432 "$(knob "$app" memory.max)"
        check by-hand-app-pids.max 16 "$(knob "$app" pids.max)"
        check by-hand-pod-pids.max 64 "$(knob "$cg" pids.max)"
    else
        check by-hand-app-memory.limit_in_bytes 33554432 "$(knob "$app" memory.limit_in_bytes)"
        check by-hand-pod-pids.max 64 "$(knob "/sys/fs/cgroup/pids/machine.slice/$scope" pids.max)"
    fi
    if grep -q "are set by that host unit only" /root/by-hand.log; then ok by-hand-says-pod-limits-are-the-units; else
        bad "by-hand-says-pod-limits-are-the-units: $(tr '\n' '|' </root/by-hand.log)"
    fi
    # shellcheck disable=SC2016 # the app's shell expands it
    out=$(podc exec held svc -- /bin/sh -c 'id -u; echo "$GREETING"' 2>&1)
    check by-hand-exec "1000|hello from svc" "${out//$'\n'/|}"
    kill -TERM "$pid"
    wait "$pid"
    check by-hand-scope-gone inactive "$(systemctl is-active "$scope" 2>/dev/null || true)"
    check_nothing_left held by-hand
    podc uninstall held >/dev/null 2>&1 || bad "by-hand-uninstall: failed"
}

# Writable cgroups (tests/vm/pods/cgroups.yaml, Kubernetes' cgroupOptions.mountMode:
# ReadWrite): on cgroup v2 with systemd 257 an app with cgroupMount: read-write makes a
# sub-cgroup of its own cgroup and moves into it, which the host sees below the app's cgroup,
# while its own tasks limit stays as podc set it; an app without it cannot. Elsewhere podc
# refuses to build the pod (P0904 below 257, P0530 on cgroup v1).
check_cgroups() {
    local out cg
    if [ "$CGROUP" != v2 ] || [ "$SDVER" -lt 257 ]; then
        out=$(podc check "$P/pods/cgroups.yaml" --cgroup "$CGROUP" --systemd "$SDVER" 2>&1)
        local want=P0904
        [ "$CGROUP" = v1 ] && want=P0530
        if printf '%s\n' "$out" | grep -q "error\[$want\]"; then ok "cgroups-refused ($want)"; else bad "cgroups-refused: ${out//$'\n'/|}"; fi
        return
    fi
    # The launcher starts the pod only where this mount has nsdelegate (its writable-cgroup step).
    value cgroup2-mount "$(awk '$5 == "/sys/fs/cgroup"' /proc/self/mountinfo)"
    install_pod cgroups --now || return
    if wait_for 60 journal_has cgroups nested "own limit"; then ok "cgroups-nested-ran"; else
        bad "cgroups-nested-ran: $(podc logs cgroups nested 2>&1 | tail -n 4 | tr '\n' '|')"
    fi
    check cgroups-own-root 1 "$(podc logs cgroups nested 2>&1 | grep -cx '.*own 0::/')"
    check cgroups-moved 1 "$(podc logs cgroups nested 2>&1 | grep -cx '.*moved 0::/work')"
    check cgroups-controller-below 1 "$(podc logs cgroups nested 2>&1 | grep -c 'below: .*pids')"
    check cgroups-own-limit-kept 1 "$(podc logs cgroups nested 2>&1 | grep -cx '.*own limit kept')"
    cg=$(app_cg cgroups nested)
    check cgroups-host-pids.max 64 "$(knob "$cg" pids.max)"
    if proc_in "$cg/work" "sleep 3600" >/dev/null; then ok "cgroups-host-sees-work"; else bad "cgroups-host-sees-work: nothing in $cg/work"; fi
    if wait_for 30 journal_has cgroups nested-user "user moved"; then
        check cgroups-user-moved 1 "$(podc logs cgroups nested-user 2>&1 | grep -cx '.*user moved 0::/mine')"
    else bad "cgroups-user-moved: $(podc logs cgroups nested-user 2>&1 | tail -n 3 | tr '\n' '|')"; fi
    if wait_for 30 journal_has cgroups plain "plain"; then
        check cgroups-plain-read-only 1 "$(podc logs cgroups plain 2>&1 | grep -cx '.*plain read-only')"
    else bad "cgroups-plain-read-only: $(podc logs cgroups plain 2>&1 | tail -n 3 | tr '\n' '|')"; fi
    timed stop-cgroups systemctl stop podc-cgroups
    check_nothing_left cgroups cgroups
    podc uninstall cgroups >/dev/null 2>&1 || bad "cgroups-uninstall: failed"
}

# What podc's pod networking leaves on the host: its bridge, nft table and leases.
podc_net_left() {
    local left=""
    ip link show podc0 >/dev/null 2>&1 && left="$left bridge"
    ip link show podc-backend >/dev/null 2>&1 && left="$left network-bridge"
    nft list table inet podc >/dev/null 2>&1 && left="$left nft-table"
    local leases
    leases=$(find /run/podc/net/leases -type f -printf '%f ' 2>/dev/null)
    [ -n "$leases" ] && left="$left leases:$leases"
    echo "$left"
}
# The address of pod $1 on bridge $2, from its lease (pod, veth, bridge: one a line).
lease_of() {
    local f
    for f in /run/podc/net/leases/*; do
        [ "$(sed -n 1p "$f" 2>/dev/null)" = "$1" ] && [ "$(sed -n 3p "$f")" = "$2" ] && basename "$f"
    done
}

# Two private pods with a way out (egress: nat), started and stopped by systemctl: each
# reaches a server in a network namespace made here (standing for the world outside), which
# sees the host's address; on the way out's bridge neither reaches the other, nor a service of
# the host; on their shared network (backend) the second finds the first by name; once both
# stop, nothing of podc's networking is left.
check_egress() {
    local bb=$P/busybox www=/var/lib/podc-vm-outside # not /run: noexec, and httpd runs the CGI
    if ! { ip netns add outside && ip link add pto type veth peer name ptop && ip link set ptop netns outside &&
        ip addr add 198.51.100.1/30 dev pto && ip link set pto up &&
        ip -n outside addr add 198.51.100.2/30 dev ptop && ip -n outside link set ptop up &&
        ip -n outside link set lo up; }; then
        bad "egress-outside: could not make the outside namespace"
        return
    fi
    mkdir -p "$www/cgi-bin"
    # shellcheck disable=SC2016 # $REMOTE_ADDR is the CGI script's, set by httpd
    printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\npeer %%s\\n" "$REMOTE_ADDR"\n' >"$www/cgi-bin/peer"
    chmod +x "$www/cgi-bin/peer"
    # In the foreground, in the background of this shell: their PIDs are known, and killed
    # at the end (the guest has no pkill).
    ip netns exec outside "$bb" httpd -f -p 198.51.100.2:9000 -h "$www" &
    local outside_httpd=$!
    # A service of the host on every address, so also on the pods' gateway.
    "$bb" httpd -f -p 9100 -h "$www" &
    local host_httpd=$!
    install_pod egress --now || return
    install_pod egress2 --now || return
    local pod leader
    for pod in egress egress2; do
        if wait_for 60 journal_has "$pod" reach "peer 198.51.100.1"; then ok "$pod-reaches-outside-as-the-host"; else
            leader=$(machinectl show "podc-$pod" -p Leader --value 2>/dev/null)
            bad "$pod-reaches-outside-as-the-host: $(journalctl -M "podc-$pod" -u reach.service -o cat --no-pager 2>&1 | tail -n 3 | tr '\n' '|')" \
                "forwarding $(cat /proc/sys/net/ipv4/ip_forward);" \
                "from the host: $(printf 'GET /cgi-bin/peer HTTP/1.0\r\n\r\n' | "$bb" nc -w 3 198.51.100.2 9000 2>&1 | tail -n 1);" \
                "from the pod: $(printf 'GET /cgi-bin/peer HTTP/1.0\r\n\r\n' | nsenter -t "$leader" -n "$bb" nc -w 3 198.51.100.2 9000 2>&1 | tail -n 1);" \
                "pod routes: $(nsenter -t "$leader" -n ip -o route 2>&1 | tr '\n' ';') $(nsenter -t "$leader" -n ip -o -4 addr 2>&1 | tr '\n' ';');" \
                "host: $(ip -o -4 addr | tr '\n' ';') $(ip -o route | tr '\n' ';');" \
                "nft: $(nft list table inet podc 2>&1 | tr -s ' \t\n' ' ')"
        fi
    done
    local a b la lb
    a=$(lease_of egress podc0)
    b=$(lease_of egress2 podc0)
    value egress-addresses "$a,$b"
    if [ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]; then ok "egress-two-addresses ($a $b)"; else bad "egress-two-addresses: '$a' '$b'"; fi
    local n
    n=$(lease_of egress podc-backend)
    # The second pod found the first by name on their network (its /etc/hosts).
    if wait_for 30 journal_has egress2 reach "by name: hello from the pod"; then ok "network-pods-reach-each-other-by-name"; else
        bad "network-pods-reach-each-other-by-name: $(journalctl -M podc-egress2 -u reach.service -o cat --no-pager 2>&1 | tail -n 3 | tr '\n' '|')"
    fi
    if podc status egress 2>&1 | grep -qx "  network private, $a on podc0, out through NAT, $n on network backend"; then ok "egress-status-address"; else
        bad "egress-status-address: $(podc status egress 2>&1 | tr '\n' '|')"
    fi
    la=$(machinectl show podc-egress -p Leader --value 2>/dev/null)
    lb=$(machinectl show podc-egress2 -p Leader --value 2>/dev/null)
    # The first pod serves on its address (httpd after its request) ...
    if wait_for 20 nsenter -t "$la" -n "$bb" nc -w 3 "$a" 8080 </dev/null; then ok "egress-pod-serves-on-its-address"; else bad "egress-pod-serves-on-its-address: $a:8080"; fi
    # ... which the second does not reach: the pods' bridge ports are isolated.
    if nsenter -t "$lb" -n "$bb" nc -w 3 "$a" 8080 </dev/null; then bad "egress-pods-isolated: egress2 reached $a:8080"; else ok "egress-pods-isolated"; fi
    if nsenter -t "$la" -n "$bb" nc -w 3 10.89.0.1 9100 </dev/null; then bad "egress-host-protected: the pod reached the host's 10.89.0.1:9100"; else ok "egress-host-protected"; fi
    # egress2 may reach that one service of the host (allowHost), at its address on either bridge.
    local gw
    for gw in 10.89.0.1 10.90.0.1; do
        if printf 'GET / HTTP/1.0\r\n\r\n' | nsenter -t "$lb" -n "$bb" nc -w 3 "$gw" 9100 2>/dev/null | grep -q '^HTTP/'; then
            ok "egress-allowed-host-port ($gw)"
        else bad "egress-allowed-host-port: egress2 did not reach $gw:9100; nft: $(nft list set inet podc hostports 2>&1 | tr -s ' \t\n' ' ')"; fi
    done
    if podc status egress2 2>&1 | grep -q "reaches host ports 9100/tcp"; then ok "egress-status-host-ports"; else
        bad "egress-status-host-ports: $(podc status egress2 2>&1 | tr '\n' '|')"
    fi
    timed stop-egress systemctl stop podc-egress podc-egress2
    check_nothing_left egress egress
    check_nothing_left egress2 egress2
    if wait_for 10 test -z "$(podc_net_left)"; then ok "egress-network-nothing-left"; else bad "egress-network-nothing-left:$(podc_net_left)"; fi
    kill "$outside_httpd" "$host_httpd" 2>/dev/null
    wait "$outside_httpd" "$host_httpd" 2>/dev/null
    ip link del pto 2>/dev/null
    ip netns del outside
    rm -rf "$www"
    podc uninstall egress >/dev/null 2>&1 || bad "egress-uninstall: failed"
    podc uninstall egress2 >/dev/null 2>&1 || bad "egress2-uninstall: failed"
}

# #26: a pod in a user namespace of its own, started by its host unit: its root is a range of
# 65536 host ids from podc's registry, what it writes to the host is owned by that range, a
# root-only host file bound in by mistake stays unreadable, the shared image keeps its owners
# and bytes, and a reinstall after `podc uninstall` (its data kept) gets the same range back.
USERNS_OUT=/var/lib/podc-vm/userns
userns_done() { [ -e "$USERNS_OUT/done" ]; }
check_userns() {
    local base image_before out
    # The host directory is the host's root's, writable by all: the pod's root is not root here.
    mkdir -p "$USERNS_OUT" /etc/podc-vm && chmod 0777 "$USERNS_OUT" && rm -f "$USERNS_OUT"/*
    (umask 077 && echo "root only" >/etc/podc-vm/root-only)
    image_before=$(tree_hash /var/lib/podc/images/busybox)
    install_pod ids --now || return
    if wait_for 60 userns_done; then ok "userns-app-ran"; else
        bad "userns-app-ran: $(journalctl -u podc-ids.service --no-pager -o cat 2>&1 | tail -n 5 | tr '\n' '|')"; return
    fi
    # shellcheck disable=SC2046 # the three words of the map
    set -- $(cat "$USERNS_OUT/uid_map")
    base=$2
    value userns-uid-map "$*"
    check userns-map-shape "0 65536" "$1 $3"
    if [ "${base:-0}" -ge $((0x70000000)) ]; then ok "userns-range-podc ($base)"; else bad "userns-range-podc: $*"; fi
    check userns-registry /var/lib/podc/ids "$(cat "/var/lib/podc/userns/$base" 2>&1)"
    check userns-host-file-owner "$base $base" "$(stat -c '%u %g' "$USERNS_OUT/uid_map")"
    check userns-volume-owner-inside "0 0" "$(cat "$USERNS_OUT/state-owner")"
    check userns-volume-owner-host "$base" "$(stat -c '%u' /var/lib/podc/volumes/ids/state/runs)"
    check userns-image-owner-inside "0 0" "$(cat "$USERNS_OUT/image-owner")"
    check userns-root-only-denied denied "$(cat "$USERNS_OUT/secret-read")"
    out=$(podc status ids 2>&1)
    if [[ $out == *"user namespace, host ids $base-$((base + 65535))"* ]]; then ok "userns-status-range"; else bad "userns-status-range: ${out//$'\n'/|}"; fi
    timed stop-userns systemctl stop podc-ids
    check userns-image-unchanged "$image_before" "$(tree_hash /var/lib/podc/images/busybox)"
    check_nothing_left ids userns
    # Uninstalled with its data kept, installed again: the same range, the data still its own.
    podc uninstall ids >/dev/null 2>&1 || bad "userns-uninstall: failed"
    rm -f "$USERNS_OUT"/*
    install_pod ids --now || return
    if wait_for 60 userns_done; then ok "userns-reinstalled-ran"; else bad "userns-reinstalled-ran: no done file"; fi
    check userns-range-kept "$base" "$(awk '{print $2}' "$USERNS_OUT/uid_map")"
    check userns-data-kept 2 "$(wc -l </var/lib/podc/volumes/ids/state/runs)"
    systemctl stop podc-ids
    podc uninstall ids --delete-data >/dev/null 2>&1 || bad "userns-uninstall-delete-data: failed"
    if [ -e "/var/lib/podc/userns/$base" ]; then bad "userns-range-released: /var/lib/podc/userns/$base is left"; else ok "userns-range-released"; fi
    rm -rf "$USERNS_OUT" /etc/podc-vm/root-only
}

journal_dirs() { find /var/log/journal -mindepth 1 -maxdepth 1 -type d | wc -l; }

# A digest-pinned image pulled from a registry on the guest's own loopback (run.sh brings its
# storage and binary, made by registry.sh), run by a pod that gives no command: the image's
# Entrypoint + Cmd, Env, WorkingDir and User apply; the app writes to its root, and the image's
# unpacked root in the store is unchanged afterwards.
tree_hash() {
    (cd "$1" && find . -printf '%p %y %m %U %G %s %l\n' | LC_ALL=C sort &&
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) | sha256sum | cut -c1-16
}
check_pulled_image() {
    local reg=/var/lib/podc-vm/registry digest ref out before after
    digest=$(cat "$P/registry/digest")
    ref=127.0.0.1:5000/podc/hello@$digest
    mkdir -p "$reg"
    cp -a "$P/registry/storage" "$reg/storage"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/storage\nhttp:\n  addr: 127.0.0.1:5000\n' "$reg" >"$reg/config.yml"
    systemd-run --quiet --unit podc-vm-registry "$P/registry/docker-registry" serve "$reg/config.yml"
    if wait_for 30 port_open 5000; then ok registry-up; else bad "registry-up: $(systemctl status podc-vm-registry 2>&1 | tail -n 3 | tr '\n' '|')"; return; fi
    local t0 rc
    t0=$(now)
    out=$(podc image pull --plain-http "$ref" 2>&1)
    rc=$?
    say "time image-pull=$(since "$t0")"
    if [ "$rc" = 0 ]; then ok "image-pull (${out//$'\n'/ })"; else bad "image-pull: ${out//$'\n'/|}"; return; fi
    if [[ $out == *"$digest"* ]]; then ok image-pull-says-digest; else bad "image-pull-says-digest: $out"; fi
    out=$(podc image ls 2>&1)
    if [[ $out == *podc/hello* ]]; then ok image-ls; else bad "image-ls: ${out//$'\n'/|}"; fi
    before=$(tree_hash /var/lib/podc/images/roots)
    install_pod pulled --now || return
    if wait_for 60 lines_at_least pulled hello "pulled: hello-from-the-image-config in /srv/hello as 1000:1000" 1; then ok "pulled-image-defaults-applied"; else
        bad "pulled-image-defaults-applied: $(journalctl -M podc-pulled -u hello.service -o cat --no-pager 2>&1 | tail -n 5 | tr '\n' '|')"
    fi
    if wait_for 20 lines_at_least pulled hello "wrote: changed" 1; then ok pulled-app-writes-its-root; else bad "pulled-app-writes-its-root: $(journalctl -M podc-pulled -u hello.service -o cat --no-pager 2>&1 | tail -n 5 | tr '\n' '|')"; fi
    if out=$(podc uninstall pulled 2>&1); then ok pulled-uninstall; else bad "pulled-uninstall: $out"; fi
    check_nothing_left pulled pulled
    after=$(tree_hash /var/lib/podc/images/roots)
    check pulled-image-root-unchanged "$before" "$after"
    systemctl stop podc-vm-registry
}

phase1() {
    value systemd "$SDVER"
    value cgroup-fs "$FS"
    value kernel "$(uname -r)"
    say "time boot=$(now)"
    if [ "$CGROUP" = v2 ]; then check cgroup-hierarchy cgroup2fs "$FS"; else check cgroup-hierarchy tmpfs "$FS"; fi
    if out=$(dpkg -i "$P/podc.deb" 2>&1); then ok "dpkg-i-podc"; else bad "dpkg-i-podc: ${out//$'\n'/|}"; fi
    check podc-on-path /usr/bin/podc "$(command -v podc)"
    check podc-package-installed "install ok installed" "$(dpkg-query -W -f '${Status}' podc 2>&1)"
    if [ -s /usr/share/man/man1/podc-install.1.gz ] && [ -s /usr/share/man/man1/podc.1.gz ] && [ -s /usr/share/man/man5/podc.5.gz ]; then ok "man-pages-installed ($(dpkg -L podc | grep -c 'man[15]/.*\.[15]\.gz$') pages)"; else
        bad "man-pages-installed: $(dpkg -L podc | grep man | tr '\n' ' ')"
    fi
    # The bash completion as bash-completion loads it: the function is registered and completes
    # the subcommand names.
    out=$(bash -c '. /usr/share/bash-completion/completions/podc && complete -p podc &&
        COMP_WORDS=(podc ins) COMP_CWORD=1 COMP_LINE="podc ins" COMP_POINT=8 && _podc podc ins podc && echo "${COMPREPLY[*]}"' 2>&1)
    if [[ $out == *"-F _podc podc"* && $out == *install* && $out != *build* ]]; then ok "bash-completion-installed (${out//$'\n'/ | })"; else
        bad "bash-completion-installed: ${out//$'\n'/|}"
    fi
    if [ -f /usr/share/zsh/vendor-completions/_podc ] && [ -f /usr/share/fish/vendor_completions.d/podc.fish ]; then
        ok "zsh-fish-completions-installed"
    else bad "zsh-fish-completions-installed: missing"; fi
    local img=/var/lib/podc/images/busybox
    mkdir -p "$img/bin" && cp "$P/busybox" "$img/bin/busybox"
    for a in $("$img/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$img/bin/$a"; done
    for d in dev etc proc root run sys tmp usr var www; do mkdir -p "$img/$d"; done
    echo "hello from the pod" >"$img/www/index.html"
    local host_journals out
    host_journals=$(journal_dirs)

    # --- main: start, limits, live properties, stop, restart, enabled for the reboot.
    build_pod main || return
    # `podc install --now` enables and starts it (systemctl enable --now underneath).
    if timed start-main podc install /root/build/main --now; then ok "podc-install-now-main returned 0"; else bad "podc-install-now-main: failed"; fi
    check main-units-installed 1 "$(units_of main)"
    check main-active active "$(systemctl is-active podc-main)"
    # Type=notify: start returned once systemd in the pod had started the apps.
    if [ -n "$(app_cg main web memory)" ] && [ -n "$(app_cg main worker memory)" ]; then ok "ready-means-apps-started"; else
        bad "ready-means-apps-started: no app cgroups right after start"
    fi
    if wait_for 120 lines_at_least main web "web up" 1 && wait_for 60 lines_at_least main worker "worker up" 1; then
        ok "journal-M-apps-output (web up, worker up)"
    else
        bad "journal-M-apps-output: $(journalctl -M podc-main --no-pager 2>&1 | tail -n 5 | tr '\n' '|')"
    fi
    if machinectl list --no-legend | grep -q '^podc-main '; then ok machined-lists-pod; else bad "machined-lists-pod: $(machinectl list --no-legend | tr '\n' '|')"; fi
    if journalctl -u podc-main --no-pager -o cat | grep -q .; then ok "journal-u-host-unit ($(journalctl -u podc-main --no-pager -o cat | wc -l) lines)"; else bad "journal-u-host-unit: empty"; fi
    check_limits main
    check_live_properties main
    local id1
    id1=$(cat /var/lib/podc/main/rootfs/etc/machine-id)
    if timed stop-main systemctl stop podc-main; then ok "stop-main returned 0"; else bad "stop-main: systemctl failed"; fi
    check stop-main-state inactive "$(systemctl is-active podc-main)"
    check stop-main-result success "$(prop main Result)"
    check stop-main-status 0 "$(prop main ExecMainStatus)"
    check_nothing_left main stop-main
    if timed restart-main systemctl restart podc-main; then ok "restart-main returned 0"; else bad "restart-main: systemctl failed"; fi
    check restart-main-active active "$(systemctl is-active podc-main)"
    if wait_for 120 lines_at_least main web "web up" 2; then ok "journal-one-history (web up twice)"; else
        bad "journal-one-history: web up $(app_lines main web "web up") times"
    fi
    check machine-id-kept "$id1" "$(cat /var/lib/podc/main/rootfs/etc/machine-id)"
    # The pod's journal lives in its installed tree, not in the host's /var/log/journal.
    check no-host-journal-dir "$host_journals" "$(journal_dirs)"
    check_operator
    if ls /var/lib/podc/main/rootfs/var/log/journal/"$id1"/*.journal >/dev/null 2>&1; then
        ok "pod-journal-in-tree"
    else
        bad "pod-journal-in-tree: $(find /var/lib/podc/main/rootfs/var/log/journal 2>&1 | tr '\n' ' ')"
    fi
    echo "$id1" >"$STATE/machine-id"

    # --- fail: an app exits 3; the pod ends by itself with that status.
    install_pod fail || return
    timed start-fail systemctl start podc-fail || bad "start-fail: systemctl failed"
    if wait_for 120 state_is fail failed; then ok "fail-pod-failed"; else bad "fail-pod-failed: $(systemctl is-active podc-fail)"; fi
    check fail-pod-status 3 "$(prop fail ExecMainStatus)"
    check fail-pod-result exit-code "$(prop fail Result)"
    check_nothing_left fail fail-pod
    systemctl reset-failed podc-fail

    # --- oom: an app allocates past its limit and is killed; its sibling lives on.
    install_pod oom || return
    timed start-oom systemctl start podc-oom || bad "start-oom: systemctl failed"
    if wait_for 120 journal_has oom hog "Failed with result"; then
        local how
        how=$(journalctl -M podc-oom -u hog.service --no-pager -o cat | grep -o "Failed with result '[a-z-]*'" | head -n 1)
        value hog-result "$how"
        if [ "$CGROUP" = v2 ]; then check hog-oom-kill "Failed with result 'oom-kill'" "$how"; else
            check hog-killed "Failed with result 'signal'" "$how"
        fi
    else
        bad "hog-ended: $(journalctl -M podc-oom --no-pager -o cat 2>&1 | tail -n 5 | tr '\n' '|')"
    fi
    if dmesg | grep -q "Killed process [0-9]* (dd)"; then ok "kernel-oom-killed-dd"; else bad "kernel-oom-killed-dd: no such kernel message"; fi
    sleep 3
    local sib
    sib=$(app_cg oom sibling memory)
    if proc_in "$sib" "sleep 3600" >/dev/null; then ok "sibling-lives-on"; else bad "sibling-lives-on: nothing in $sib"; fi
    check oom-pod-active active "$(systemctl is-active podc-oom)"
    local hogcg
    hogcg=$(app_cg oom hog memory)
    if [ -z "$hogcg" ] || [ -z "$(cat "$hogcg/cgroup.procs" 2>/dev/null)" ]; then ok "hog-unit-stopped-whole"; else
        bad "hog-unit-stopped-whole: $(tr '\n' ' ' <"$hogcg/cgroup.procs")"
    fi
    timed stop-oom systemctl stop podc-oom
    check oom-pod-state-after-stop failed "$(systemctl is-active podc-oom)"
    check oom-pod-status-after-stop 137 "$(prop oom ExecMainStatus)"
    check_nothing_left oom oom-pod
    systemctl reset-failed podc-oom

    # --- jobs: pods whose apps end by themselves; init apps.
    check_jobs
    check_init

    # --- health probes.
    check_health

    # --- persistent and memory volumes, requests.
    check_data

    # --- configuration and secrets.
    check_secret

    # --- a Kubernetes file as people write it.
    check_kube

    # --- an app's own cgroup, writable.
    check_cgroups

    # --- the tree's target against this host; restarting a pod; podc exec; by hand (#28).
    check_target
    check_restart
    check_by_hand

    # --- a user namespace of the pod's own (#26).
    check_userns

    # --- networking: a published port, socket activation of the whole pod.
    check_network
    check_egress
    check_uninstall_running
    check_quick_start
    check_pulled_image

    # --- the enabled pod starts at boot.
    check main-enabled enabled "$(systemctl is-enabled podc-main)"
    journal_dirs >"$STATE/journal-dirs" # the host's own, none more after the reboot
    echo 2 >"$STATE/phase"
    say "reboot"
    systemctl reboot
}

phase2() {
    say "time boot-2=$(now)"
    if wait_for 180 state_is main active; then ok "main-active-after-reboot"; else bad "main-active-after-reboot: $(systemctl is-active podc-main)"; fi
    if wait_for 120 lines_at_least main web "web up" 4; then ok "journal-history-across-reboot (web up 4 times)"; else
        bad "journal-history-across-reboot: web up $(app_lines main web "web up") times"
    fi
    check machine-id-kept-across-reboot "$(cat "$STATE/machine-id")" "$(cat /var/lib/podc/main/rootfs/etc/machine-id)"
    check journal-dirs-after-reboot "$(cat "$STATE/journal-dirs")" "$(journal_dirs)"
    if [ "$CGROUP" = v2 ]; then
        check "reboot-pod-memory.max" 536870912 "$(knob "$(pod_cg main)" memory.max)"
    else
        check "reboot-pod-memory.limit_in_bytes" 536870912 "$(knob "$(pod_cg main memory)" memory.limit_in_bytes)"
    fi
    timed stop-main-2 systemctl disable --now podc-main
    check disable-now-state inactive "$(systemctl is-active podc-main)"
    check_nothing_left main disable-now
    check journal-readable-after-stop 4 \
        "$(journalctl -D /var/lib/podc/main/rootfs/var/log/journal -u web.service -o cat --no-pager | grep -cx 'web up')"
    # podc logs of a stopped pod reads the journal in its tree.
    check logs-stopped-pod 4 "$(podc logs main web 2>&1 | grep -cx '.*web up')"
    local out
    out=$(podc status main 2>&1)
    if printf '%s\n' "$out" | head -n 1 | grep -q '^pod main: inactive (dead)' && printf '%s\n' "$out" | awk '$1 == "web" && $2 == "inactive"' | grep -q .; then
        ok "status-stopped-pod"
    else bad "status-stopped-pod: ${out//$'\n'/|}"; fi
    # The data pod (enabled with --now) came back with its volume: a third run.
    if wait_for 120 runs_at_least 3; then ok "data-kept-across-reboot (3 runs)"; else bad "data-kept-across-reboot: $(runs) runs"; fi
    if out=$(podc uninstall data 2>&1) && [ -d "$VOL" ]; then ok "data-uninstall-keeps-volume"; else bad "data-uninstall-keeps-volume: $out"; fi
    if out=$(podc uninstall data --delete-data 2>&1) && ! [ -e /var/lib/podc/volumes/data ]; then ok "data-delete-data"; else
        bad "data-delete-data: ${out//$'\n'/|}"
    fi
    if out=$(timed uninstall-main podc uninstall main 2>&1); then ok "uninstall-main returned 0"; else bad "uninstall-main: $out"; fi
    check uninstall-main-units 0 "$(units_of main)"
    if [ -e /var/lib/podc/main ]; then bad "uninstall-main-dir: still there"; else ok "uninstall-main-dir"; fi
    check_nothing_left main uninstall-main
    check uninstall-main-not-loaded not-found "$(systemctl show -p LoadState --value podc-main.service)"
    say "done"
    systemctl poweroff
}

if [ "$(cat "$STATE/phase" 2>/dev/null)" = 2 ]; then phase2; else phase1; fi
