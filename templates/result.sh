# shellcheck shell=sh
# Records how app $1 of the pod ended. Run with /usr/bin/sh by the ExecStop= of
# podc-result@<app>.service, which systemd stops once the app's unit has stopped (by itself, or
# because the pod stops), so the app's unit is still loaded and its last run can be read.
#
# Writes "<status> <result>" to $PODC_RESULT_DIR/<app>, for exit.sh. The status is what the
# pod exits with if this app is the first, in manifest order, that did not succeed:
#   the exit code          the app exited with a non-zero code (203: systemd could not
#                          execute the program, e.g. it is missing)
#   128 + signal           a signal ended it (with or without a core dump)
#   137                    the kernel's OOM killer ended it (128 + SIGKILL)
#   1                      it never ran (a failed `after` dependency), never passed its health
#                          probe, or ended in a way that gives no status (a start timeout, ...)
#   0                      it succeeded, or systemd stopped it
#
# PODC_RESULT_DIR is for tests; in the pod it is not set. `systemctl` is found on PATH.

app=$1
dir=${PODC_RESULT_DIR:-/run/podc/result}

# The app's last run, from `systemctl show` (Key=value lines).
result=
code=
status=
started=0
while IFS='=' read -r key value; do
    case $key in
        Result) result=$value ;;
        # How the main process ended: 1 exited, 2 killed by a signal, 3 dumped core.
        ExecMainCode) code=$value ;;
        # Its exit code, or the signal's number.
        ExecMainStatus) status=$value ;;
        # 0 if the unit never left the inactive state: it never started.
        InactiveExitTimestampMonotonic) started=$value ;;
    esac
done <<SHOW
$(systemctl show -p Result -p ExecMainCode -p ExecMainStatus -p InactiveExitTimestampMonotonic "$app.service")
SHOW

case $result in
    success)
        # A unit whose dependency failed also ends with Result=success, but never started.
        if [ "$started" = 0 ]; then rc=1; else rc=0; fi
        ;;
    oom-kill)
        rc=137
        ;;
    *)
        case $code in
            1) rc=$status ;;
            2 | 3) rc=$((128 + status)) ;;
            *) rc=1 ;;
        esac
        # A failure is never reported as 0, nor as anything but a number.
        [ "$rc" -gt 0 ] 2>/dev/null || rc=1
        ;;
esac

# An app that never passed its health probe: health.sh killed it (SIGKILL, which says
# nothing) and recorded why; the status is 1.
if [ "$rc" != 0 ] && read -r health _ 2>/dev/null <"${PODC_HEALTH_DIR:-/run/podc/health}/$app" &&
    [ "$health" = never-healthy ]; then
    rc=1
    result=health
fi

mkdir -p "$dir" && echo "$rc $result" >"$dir/$app"
