#!/usr/bin/env bash
# Exercises the init integration in cmd/varta-watch/init the way a board
# runs it: the /etc/init.d script under `busybox sh` with BusyBox's own
# start-stop-daemon (not Debian's dpkg one), the OpenRC and procd scripts
# with their init system's functions stubbed, the inittab lines, and the
# systemd unit through `systemd-analyze verify` when that is installed.
#
#   bash .ci/initd.sh          (as root; needs busybox and go; < 60 s)
#
# Every path the scripts touch is inside a temporary directory; every
# process it starts is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
init=$PWD/cmd/varta-watch/init
t0=$SECONDS
checks=0
tmp=
wd=
log=

fail() {
	echo "initd.sh: FAIL: $*" >&2
	if [ -n "$log" ] && [ -s "$log" ]; then
		echo "initd.sh: last lines of the observer's log ($log):" >&2
		tail -n 15 "$log" | sed 's/^/    /' >&2
	fi
	exit 1
}
ok() {
	checks=$((checks + 1))
	printf 'ok %2d  %s\n' "$checks" "$*"
}

# alive PID: the process exists and is not a zombie (a daemon reparented
# to a PID 1 that does not reap stays a zombie; it has exited all the same).
alive() {
	local stat
	[ -n "$1" ] && stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# Kill what we started: any process running our temporary varta-watch.
cleanup() {
	local rc=$? p exe
	[ -n "$wd" ] && kill "$wd" 2>/dev/null
	if [ -n "$tmp" ] && [ -d "$tmp" ]; then
		for p in /proc/[0-9]*; do
			exe=$(readlink "$p/exe" 2>/dev/null) || continue
			if [ "$exe" = "$tmp/bin/varta-watch" ]; then
				echo "initd.sh: cleanup: killing leftover varta-watch pid ${p#/proc/}" >&2
				kill -KILL "${p#/proc/}" 2>/dev/null || true
			fi
		done
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'fail "interrupted or over the time limit"' INT TERM

[ "$(id -u)" = 0 ] || fail "run as root (the init script creates run directories and groups sockets)"
command -v busybox >/dev/null || fail "busybox is not installed (apt-get install busybox)"
command -v go >/dev/null || fail "go is not on PATH"

tmp=$(mktemp -d /tmp/varta-initd.XXXXXX)
chmod 0755 "$tmp"
mkdir -p "$tmp/bin" "$tmp/shim"
echo "initd.sh: building varta-watch and varta-beat into $tmp/bin"
CGO_ENABLED=0 go build -o "$tmp/bin/varta-watch" ./cmd/varta-watch || fail "go build ./cmd/varta-watch"
CGO_ENABLED=0 go build -o "$tmp/bin/varta-beat" ./cmd/varta-beat || fail "go build ./cmd/varta-beat"
beat=$tmp/bin/varta-beat

# From here on the run is bounded: 60 s, builds excluded.
(
	end=$((SECONDS + 60))
	while [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
	echo "initd.sh: FAIL: still running after 60 s" >&2
	kill -TERM $$
) &
wd=$!

# start-stop-daemon must be BusyBox's applet: put a symlink to busybox
# first on PATH, and check that `busybox sh` resolves it to BusyBox.
ln -s "$(command -v busybox)" "$tmp/shim/start-stop-daemon"
export PATH="$tmp/shim:$PATH"
busybox sh -c 'start-stop-daemon --help 2>&1' | grep -q '^BusyBox' ||
	fail "start-stop-daemon under busybox sh is not BusyBox's applet"
ok "start-stop-daemon under busybox sh is BusyBox's applet ($(busybox | head -n 1 | sed 's/ multi-call.*//'))"

# --- syntax -------------------------------------------------------------
for f in varta-watch.init varta-watch.openrc varta-watch.procd varta-watch.conf; do
	sh -n "$init/$f" || fail "sh -n $f"
	busybox sh -n "$init/$f" || fail "busybox sh -n $f"
done
ok "sh -n and busybox sh -n accept varta-watch.{init,openrc,procd,conf}"

got=$(env -i busybox sh -c '. "$1" && echo "$VARTA_SOCKET $VARTA_THRESHOLD_MS $VARTA_SOCKET_MODE [$VARTA_ARGS]"' sh "$init/varta-watch.conf") ||
	fail "the sample varta-watch.conf does not source under busybox sh"
[ "$got" = "/run/varta/varta.sock 5000 0600 []" ] || fail "the sample conf sets: $got"
ok "the sample conf sources cleanly: $got"

grep -qx '::sysinit:/sbin/sysctl -w net.unix.max_dgram_qlen=512' "$init/inittab.txt" ||
	fail "inittab.txt lacks the sysctl line"
grep -qx '::respawn:/etc/init.d/varta-watch foreground' "$init/inittab.txt" ||
	fail "inittab.txt lacks the respawn line"
ok "inittab.txt has the sysctl and respawn lines"

# --- the init.d script under busybox sh ---------------------------------
sock=$tmp/run/varta.sock
events=$tmp/log/events.tsv
log=$tmp/log/varta-watch.log
conf=$tmp/varta-watch.conf
writeconf() { # writeconf [extra lines...]
	{
		echo "VARTA_SOCKET=$sock"
		echo "VARTA_THRESHOLD_MS=500"
		echo "VARTA_SOCKET_MODE=0600"
		echo "VARTA_ARGS=\"--export-file $events --shutdown-grace-ms 500\""
		echo "VARTA_LOG=$log"
		printf '%s\n' "$@"
	} >"$conf"
}
writeconf
export VARTA_BIN=$tmp/bin/varta-watch VARTA_CONF=$conf PIDFILE=$tmp/varta-watch.pid RUNDIR=$tmp/run
export START_TIMEOUT=5 STOP_TIMEOUT=10

# svc ACTION: run the init script under busybox sh; sets $out and $rc.
svc() {
	rc=0
	out=$(busybox sh "$init/varta-watch.init" "$@" 2>&1) || rc=$?
}
# expect RC ACTION: the action exits RC.
expect() {
	local want=$1
	shift
	svc "$@"
	[ "$rc" = "$want" ] || fail "init.d $* exited $rc, want $want; it said: $out"
}
pidfile_pid() { cat "$PIDFILE" 2>/dev/null || true; }
# wait_for SECONDS COMMAND...: poll every 50 ms until COMMAND succeeds.
wait_for() {
	local n=$(($1 * 20))
	shift
	while ! "$@"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.05
	done
}
has_event() { grep -qP "^[0-9]+\t$1\t$2\t" "$events" 2>/dev/null; }
gone() { ! alive "$1"; }
# beat_once: one frame from a fresh varta-beat; prints its pid.
beat_once() {
	"$beat" --socket "$sock" --count 1 &
	local b=$!
	wait "$b" || fail "varta-beat --socket $sock exited $?"
	echo "$b"
}

expect 3 status
ok "status before start: exit 3 ($out)"

expect 0 start
pid=$(pidfile_pid)
alive "$pid" || fail "start said '$out' but pid '$pid' from $PIDFILE is not running"
[ "$(readlink "/proc/$pid/exe")" = "$VARTA_BIN" ] || fail "pid $pid is $(readlink "/proc/$pid/exe"), not $VARTA_BIN"
[ -S "$sock" ] || fail "no socket at $sock after start"
[ "$(stat -c %a "$RUNDIR")" = 750 ] || fail "$RUNDIR has mode $(stat -c %a "$RUNDIR"), want 750"
ok "start: exit 0, pid $pid is varta-watch itself, socket bound, $RUNDIR mode 0750"

expect 0 status
ok "status while running: exit 0 ($out)"

expect 0 start
[ "$(pidfile_pid)" = "$pid" ] || fail "a second start replaced pid $pid with $(pidfile_pid)"
ok "start while running: exit 0, still pid $pid ($out)"

b=$(beat_once)
wait_for 5 has_event beat "$b" || fail "no beat line for varta-beat pid $b in $events"
ok "varta-beat pid $b: $(grep -P "\tbeat\t$b\t" "$events")"
wait_for 5 has_event stall "$b" || fail "no stall line for pid $b 500 ms after its beat"
ok "and its stall after the 500 ms threshold: $(grep -P "\tstall\t$b\t" "$events")"

expect 0 reload
wait_for 3 grep -q 'reopened' "$log" || fail "no 'reopened' line in the log after reload (SIGHUP)"
alive "$pid" || fail "pid $pid died on reload"
ok "reload: SIGHUP reopened the output files, pid $pid still running"

expect 0 restart
new=$(pidfile_pid)
[ -n "$new" ] && [ "$new" != "$pid" ] || fail "restart kept pid '$new'"
gone "$pid" || fail "old pid $pid still running after restart"
alive "$new" || fail "new pid $new is not running after restart"
b=$(beat_once)
wait_for 5 has_event beat "$b" || fail "no beat for pid $b after restart"
ok "restart: exit 0, pid $pid -> $new, beats arrive again"
pid=$new

expect 0 stop
gone "$pid" || fail "pid $pid still running after stop said: $out"
[ ! -e "$sock" ] || fail "socket $sock left behind after stop"
[ ! -e "$PIDFILE" ] || fail "pid file left behind after stop"
grep -q 'msg="stopped"' "$log" || fail "the observer did not log its clean shutdown"
ok "stop: exit 0, pid $pid gone, socket and pid file removed, clean shutdown logged"

expect 3 status
ok "status after stop: exit 3 ($out)"
expect 0 stop
ok "stop when stopped: exit 0 ($out)"

# A crash: SIGKILL leaves the pid file and a stale socket behind.
expect 0 start
pid=$(pidfile_pid)
kill -KILL "$pid"
wait_for 5 gone "$pid" || fail "pid $pid survived SIGKILL"
[ -S "$sock" ] || fail "expected a stale socket after SIGKILL"
expect 1 status
ok "status after a crash: exit 1 ($out)"
expect 0 start
new=$(pidfile_pid)
[ "$new" != "$pid" ] && alive "$new" || fail "start after a crash did not start a new observer: $out"
expect 0 status
expect 0 stop
[ ! -e "$sock" ] || fail "socket left behind"
ok "start after a crash replaces the stale socket and pid file (pid $new), stop cleans up"

# An observer that does not exit on TERM (here: stopped with SIGSTOP) is
# killed after STOP_TIMEOUT.
expect 0 start
pid=$(pidfile_pid)
kill -STOP "$pid"
STOP_TIMEOUT=1 expect 0 stop
case $out in *"sending KILL"*) ;; *) fail "stop of a stuck observer did not say it sent KILL: $out" ;; esac
gone "$pid" || fail "stuck pid $pid survived stop"
[ ! -e "$PIDFILE" ] || fail "pid file left behind after KILL"
rm -f "$sock" # KILL leaves the socket; the next start would replace it anyway
ok "stop of an observer stuck past STOP_TIMEOUT: KILL, exit 0, pid $pid gone"

# Start-up failures are reported, not hidden behind start-stop-daemon -b.
writeconf 'VARTA_ARGS="--no-such-flag"'
expect 1 start
case $out in *"unknown flag --no-such-flag"*) ;; *) fail "start with a bad flag did not show the observer's error: $out" ;; esac
expect 3 status
ok "start with a bad flag: exit 1 with the observer's own message, status 3"
VARTA_BIN=$tmp/bin/missing expect 5 start
ok "start with the binary missing: exit 5 ($out)"
writeconf

# Agents of another group: the socket directory becomes root:<group> 2750
# and the socket inherits the group.
group=daemon
getent group "$group" >/dev/null || fail "group $group does not exist"
writeconf "VARTA_SOCKET_GROUP=$group" "VARTA_SOCKET_MODE=0660"
expect 0 start
[ "$(stat -c '%a %G' "$RUNDIR")" = "2750 $group" ] || fail "$RUNDIR is $(stat -c '%a %G' "$RUNDIR"), want 2750 $group"
[ "$(stat -c '%a %G' "$sock")" = "660 $group" ] || fail "$sock is $(stat -c '%a %G' "$sock"), want 660 $group"
expect 0 stop
ok "VARTA_SOCKET_GROUP=$group: directory 2750 root:$group, socket 0660 group $group"
writeconf
chmod 0750 "$RUNDIR"
chgrp root "$RUNDIR"

# The inittab respawn action: foreground execs the observer in place.
busybox sh "$init/varta-watch.init" foreground 2>>"$log" &
fg=$!
wait_for 5 test -S "$sock" || fail "foreground: no socket at $sock"
[ "$(readlink "/proc/$fg/exe")" = "$VARTA_BIN" ] || fail "foreground: pid $fg is $(readlink "/proc/$fg/exe"), not varta-watch (no exec?)"
kill -TERM "$fg"
frc=0
wait "$fg" || frc=$?
[ "$frc" = 0 ] || fail "foreground: varta-watch exited $frc on TERM, want 0"
[ ! -e "$sock" ] || fail "foreground: socket left behind"
ok "foreground (inittab respawn): execs varta-watch as pid $fg, TERM -> exit 0, socket removed"

# --- OpenRC and procd, their framework stubbed --------------------------
# Each script turns the same settings into a command line; run that command
# for a second to show the observer accepts it.
runs_clean() { # runs_clean WHAT ARGS...: the observer starts and exits 0
	local r=0
	"$@" --shutdown-after-secs 1 2>>"$log" || r=$?
	[ "$r" = 0 ] || fail "$1: the observer rejected the command line (exit $r): $*"
}
want_args="--socket $sock --threshold-ms 500 --socket-mode 0600 --export-file $events --shutdown-grace-ms 500"

openrc=$(
	env -i PATH="$PATH" VARTA_BIN="$VARTA_BIN" VARTA_CONF="$conf" RC_SVCNAME=varta-watch busybox sh -c '
		checkpath() { # checkpath -d [-m MODE] [-o OWNER] PATH
			mode= owner=
			while [ $# -gt 1 ]; do
				case $1 in -m) mode=$2; shift ;; -o) owner=$2; shift ;; esac
				shift
			done
			mkdir -p "$1" && { [ -z "$mode" ] || chmod "$mode" "$1"; } && { [ -z "$owner" ] || chown "$owner" "$1"; }
		}
		ebegin() { :; }; eend() { :; }; ewarn() { echo "ewarn: $*" >&2; }
		. "$1"
		start_pre || exit 1
		echo "$command|$command_args|$error_log|$pidfile|$command_background"
	' sh "$init/varta-watch.openrc"
) || fail "openrc start_pre failed"
IFS='|' read -r o_cmd o_args o_err o_pid o_bg <<<"$openrc"
[ "$o_cmd" = "$VARTA_BIN" ] || fail "openrc: command=$o_cmd"
[ "$(echo $o_args)" = "$want_args" ] || fail "openrc: command_args='$o_args', want '$want_args'"
[ "$o_err" = "$log" ] && [ "$o_pid" = /run/varta-watch.pid ] && [ "$o_bg" = true ] ||
	fail "openrc: error_log=$o_err pidfile=$o_pid command_background=$o_bg"
# OpenRC evals command_args when it calls start-stop-daemon.
eval "runs_clean \"\$o_cmd\" $o_args"
ok "OpenRC start_pre: command_args from the shared conf, background + pid file; the observer accepts them"

procd=$(
	env -i PATH="$PATH" busybox sh -c '
		procd_open_instance() { :; }
		procd_close_instance() { :; }
		procd_set_param() { [ "$1" = command ] || return 0; shift; printf "%s\n" "$@"; }
		. "$1"
		VARTA_CONF=$2
		start_service
	' sh "$init/varta-watch.procd" "$conf"
) || fail "procd start_service failed"
mapfile -t p_cmd <<<"$procd"
# The command may start with a small sh that sets the OOM score adjustment
# and execs the observer (the same pid, which procd watches):
# /bin/sh -c '...; exec "$@"' ADJ /usr/bin/varta-watch ARGS...
if [ "${p_cmd[0]}" = /bin/sh ]; then
	[ "${p_cmd[1]}" = -c ] && [[ "${p_cmd[2]}" == *'exec "$@"' ]] ||
		fail "procd: a sh wrapper that does not exec the observer: ${p_cmd[*]:0:3}"
	p_cmd=("${p_cmd[@]:4}")
fi
[ "${p_cmd[0]}" = /usr/bin/varta-watch ] || fail "procd: command starts with ${p_cmd[0]}"
[ "${p_cmd[*]:1}" = "$want_args" ] || fail "procd: args '${p_cmd[*]:1}', want '$want_args'"
runs_clean "$VARTA_BIN" "${p_cmd[@]:1}"
grep -q 'procd_set_param respawn' "$init/varta-watch.procd" || fail "procd: no respawn"
ok "procd start_service: command from the shared conf, one arg per flag; the observer accepts it"

# --- systemd --------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
	# verify wants ExecStart's binary to exist: point it at our build.
	unit=$tmp/systemd/varta-watch.service
	mkdir -p "${unit%/*}"
	sed "s|/usr/bin/varta-watch|$VARTA_BIN|" "$init/varta-watch.service" >"$unit"
	vrc=0
	vout=$(systemd-analyze verify "$unit" 2>&1) || vrc=$?
	[ "$vrc" = 0 ] && [ -z "$vout" ] || fail "systemd-analyze verify (exit $vrc): $vout"
	ok "systemd-analyze verify varta-watch.service: no complaints ($(systemd-analyze --version | head -n 1))"
	exposure=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | grep -o 'Overall exposure level.*' || true)
	[ -z "$exposure" ] || echo "       systemd-analyze security: $exposure"
else
	echo "skip   systemd-analyze is not installed: the unit was not verified"
fi

echo "initd.sh: PASS ($checks checks, $((SECONDS - t0)) s)"
