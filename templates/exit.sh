# shellcheck shell=sh
# Makes the pod's systemd exit once every app has stopped. Run with /usr/bin/sh by the
# ExecStop= of podc-exit.service, with the pod's apps in manifest order as arguments: systemd
# stops that unit once no app needs it any more, after the apps' podc-result@ units have
# written how each app ended (see result.sh).
#
# The pod exits with 0 if every app succeeded, else with the status of the first app, in
# manifest order, that did not. An app without a record never ran (its result unit is still
# up because the app never started) and counts as 1.
#
# PODC_RESULT_DIR is for tests; in the pod it is not set. `systemctl` is found on PATH.

dir=${PODC_RESULT_DIR:-/run/podc/result}

rc=0
for app in "$@"; do
    read -r status _ 2>/dev/null <"$dir/$app" || status=1
    [ "$status" = 0 ] && continue
    rc=$status
    break
done

# --no-block: this unit is itself part of the stop that `exit` starts.
exec systemctl --no-block exit "$rc"
