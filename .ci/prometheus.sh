#!/usr/bin/env bash
# A real Prometheus against a real varta-watch under load
# (cmd/varta-watch/prometheus/README.md).
#
# Checks and unit-tests the operator bundle in cmd/varta-watch/prometheus,
# then builds varta-watch, varta-beat and bench's loadgen and runs the
# observer on loopback with a bearer token, an event file, an audit log, a
# recovery command that fails, an escalation ladder, a reset-reason file
# that records an unexpected reset, a per-pid rate limit, and a pty
# standing in for the hardware watchdog. Prometheus (Debian's prometheus
# package) scrapes it every second with the bundle's rules loaded.
#
# Healthy phase: 16 loadgen agents and one varta-beat agent beat; the target
# is up, every rule evaluates, and no alert fires but VartaUnexpectedReset
# (the reset the file records) and VartaDeclaredAgentMissing for the one
# agent the --agents-file declares and nothing runs. Failure phase: the varta-beat agent is
# stopped (SIGSTOP: alive, silent), two agents beat faster than the rate
# limit, and one /metrics request comes without the token; the script waits
# until VartaAgentStalled fires for that pid with its name, and the
# recovery, escalation, rate-limit and auth alerts fire. Then every rule
# must be healthy and every dashboard query must return data. Every
# process it starts is stopped by its pid on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

bundle=cmd/varta-watch/prometheus
limit=60 # seconds for each wait below
begin=$SECONDS

say() { printf 'prometheus.sh: %s (t=%ds)\n' "$*" $((SECONDS - begin)); }

for tool in prometheus promtool go script; do
	command -v "$tool" >/dev/null || { echo "prometheus.sh: $tool is not installed (Debian: apt-get install prometheus; script is in bsdutils)" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
prom=""
stop_all() {
	local p i
	# A stopped agent takes SIGTERM only once continued.
	for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap stop_all EXIT

fail() {
	echo "prometheus.sh: FAIL: $*" >&2
	local f
	if [ -n "${prom:-}" ]; then
		echo "--- Prometheus's last scrape error: $(http_get "$prom" /api/v1/targets 2>/dev/null |
			sed -n 's/.*"lastError":"\([^"]*\)".*/\1/p')" >&2
	fi
	for f in "$tmp"/*.log; do
		[ -s "$f" ] && { echo "--- last lines of $(basename "$f")" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}

# http_get HOST:PORT PATH [TOKEN]: prints the whole response. HTTP/1.0, so
# the server closes the connection and uses no chunked encoding; bash's
# /dev/tcp, so the script needs no curl.
http_get() {
	local host=${1%:*} port=${1##*:} auth=""
	[ -n "${3:-}" ] && auth="Authorization: Bearer $3"$'\r\n'
	exec 3<>"/dev/tcp/$host/$port" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n%s\r\n' "$2" "$1" "$auth" >&3
	timeout 10 cat <&3 || true
	exec 3<&-
}

# urlencode STRING: percent-encodes all but unreserved characters, for a
# PromQL expression in a query string.
urlencode() {
	local s=$1 out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[a-zA-Z0-9._~-]) out+=$c ;;
		*) printf -v c '%%%02X' "'$c"; out+=$c ;;
		esac
	done
	printf '%s' "$out"
}

# wait_for WHAT CMD...: runs CMD every 0.5 s until it succeeds, failing
# after $limit seconds.
wait_for() {
	local what=$1 until=$((SECONDS + limit))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < until)) || fail "gave up after ${limit}s waiting for $what"
		sleep 0.5
	done
	say "$what"
}

say "promtool check rules"
promtool check rules "$bundle/alerts.yml" "$bundle/rules.yml"
say "promtool test rules"
promtool test rules "$bundle/tests.yml"
rules_total=$(grep -cE '^\s*- (alert|record): ' "$bundle/alerts.yml" "$bundle/rules.yml" | awk -F: '{n += $2} END {print n}')

say "build"
go build -o "$tmp/varta-watch" ./cmd/varta-watch
go build -o "$tmp/varta-beat" ./cmd/varta-beat
go build -o "$tmp/loadgen" ./bench/cmd/loadgen

token="ci-$RANDOM$RANDOM$RANDOM"
(umask 077 && printf '%s\n' "$token" >"$tmp/token")

# A reset-reason file from another boot with no controlled reset pending:
# the observer counts an unexpected reset at start.
printf 'varta-reset-reason 1\nseen_boot=00000000-0000-0000-0000-000000000000\nresets=0\npending=false\n' >"$tmp/reset-reason"

# Declared agents: varta-beat, and one that never comes, so it is missing
# a second after the start.
printf 'beat comm=varta-beat\nghost comm=ghost-agent expect-within-ms=1000\n' >"$tmp/agents.conf"

# A pty stands in for /dev/watchdog: script(1) holds the master and runs a
# sleep on the slave, whose name the sleep's stdin gives.
script -qfc "sleep 600" /dev/null </dev/null >/dev/null 2>&1 &
pids+=($!)
scr=$!
wdog=""
for ((i = 0; i < 40; i++)); do
	child=$(cat /proc/$scr/task/*/children 2>/dev/null | awk '{print $1}')
	[ -n "$child" ] && wdog=$(readlink "/proc/$child/fd/0" 2>/dev/null || true)
	[[ $wdog == /dev/pts/* ]] && break
	sleep 0.1
done
[[ $wdog == /dev/pts/* ]] || fail "script(1) gave no pty for the watchdog stand-in"
pids+=($child)

# Port 0: the observer picks a free port and logs it, so nothing races.
# The recovery command fails (exit 3), so one failure escalates the agent.
"$tmp/varta-watch" --socket "$tmp/obs.sock" --threshold-ms 2000 \
	--prom-addr 127.0.0.1:0 --prom-token-file "$tmp/token" \
	--export-file "$tmp/events" --recovery-audit-file "$tmp/audit" \
	--recovery-exec "/bin/sh -c 'exit 3'" --escalate-after 1 --escalate-exec /bin/true \
	--reset-reason-file "$tmp/reset-reason" --hw-watchdog "$wdog" --agents-file "$tmp/agents.conf" \
	--max-beat-rate 20 2>"$tmp/varta-watch.log" &
pids+=($!)
wait_for "observer listening" grep -q 'msg="listening"' "$tmp/varta-watch.log"
addr=$(sed -n 's/.*msg="serving metrics" addr=\([^ ]*\).*/\1/p' "$tmp/varta-watch.log" | head -n 1)
[ -n "$addr" ] || fail "the observer did not log its metrics address"
say "observer serves metrics on $addr"
http_get "$addr" /metrics "$token" | grep -q '^varta_build_info{' || fail "/metrics with the token has no varta_build_info"

"$tmp/loadgen" -socket "$tmp/obs.sock" -n 16 -rate 4 -duration 300s >"$tmp/loadgen.log" 2>&1 &
pids+=($!)
"$tmp/varta-beat" --socket "$tmp/obs.sock" --count 1000000 --interval-ms 250 2>"$tmp/varta-beat.log" &
agent=$!
pids+=($agent)
say "16 loadgen agents beat 4 times a second, varta-beat pid $agent every 250 ms"

cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/$bundle/alerts.yml
  - $PWD/$bundle/rules.yml
scrape_configs:
  - job_name: varta-watch
    authorization:
      credentials_file: $tmp/token
    static_configs:
      - targets: ["$addr"]
EOF
promtool check config "$tmp/prometheus.yml" >/dev/null || fail "promtool check config rejects the generated prometheus.yml"

# Prometheus cannot report a port it chose, so try free-looking ones.
for attempt in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
	prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
		--web.listen-address="127.0.0.1:$port" 2>"$tmp/prometheus.log" &
	p=$!
	pids+=($p)
	for ((i = 0; i < 40; i++)); do
		kill -0 "$p" 2>/dev/null || break
		if http_get "127.0.0.1:$port" /-/ready 2>/dev/null | head -n 1 | grep -q ' 200 '; then
			prom="127.0.0.1:$port"
			break 2
		fi
		sleep 0.25
	done
	kill -0 "$p" 2>/dev/null && fail "Prometheus on port $port did not become ready"
	say "Prometheus could not use port $port; trying another"
done
[ -n "$prom" ] || fail "Prometheus did not start"
say "Prometheus ready on $prom"

# The API answers one line of JSON; split it into one line per object of
# interest and grep those.
target_up() {
	http_get "$prom" /api/v1/targets | sed 's/{"discoveredLabels":/\n&/g' |
		grep -F "\"scrapeUrl\":\"http://$addr/metrics\"" | grep -q '"health":"up"'
}
series_for_agent() { http_get "$prom" "/api/v1/query?query=$1" | grep -q "\"pid\":\"$agent\""; }
# rules_ok: every rule of the bundle evaluated, healthy, without an error.
rules_ok() {
	local r
	r=$(http_get "$prom" /api/v1/rules | sed 's/"health":/\n&/g')
	[ "$(grep -c '^"health":"ok"' <<<"$r")" -eq "$rules_total" ] && ! grep -q '"lastError":"[^"]' <<<"$r"
}
# firing: the names of the alerts firing now, one a line, sorted.
firing() {
	http_get "$prom" /api/v1/alerts | sed 's/{"labels":/\n&/g' | grep -F '"state":"firing"' |
		sed -n 's/.*"alertname":"\([^"]*\)".*/\1/p' | sort -u
}
fires() { firing | grep -qx "$1"; }
stall_alert() {
	http_get "$prom" /api/v1/alerts | sed 's/{"labels":/\n&/g' | grep -F '"alertname":"VartaAgentStalled"' |
		grep -F "\"pid\":\"$agent\"" | grep -F '"name":"varta-beat"' | grep -q '"state":"firing"'
}

missing_alert() {
	http_get "$prom" /api/v1/alerts | sed 's/{"labels":/\n&/g' | grep -F '"alertname":"VartaDeclaredAgentMissing"' |
		grep -F "\"name\":\"$1\"" | grep -q '"state":"firing"'
}

wait_for "target up in /api/v1/targets" target_up
wait_for "varta_beats_total has a series for pid $agent" series_for_agent varta_beats_total
# The exposition itself, with the agent's rows, as promtool reads it
# (HTTP/1.0: the body ends at the close; Prometheus's own scrapes are
# HTTP/1.1 and get it chunked).
http_get "$addr" /metrics "$token" | sed '1,/^\r$/d' >"$tmp/exposition.txt"
grep -q "^varta_beats_total{pid=\"$agent\"}" "$tmp/exposition.txt" || fail "the exposition has no row for pid $agent"
# Its lint may only object to upstream's varta_recovery_duration_ns_sum, a
# name kept as upstream spells it so that their dashboards keep working.
lint=$(promtool check metrics <"$tmp/exposition.txt" 2>&1 || true)
lint=$(grep -v '^varta_recovery_duration_ns_sum ' <<<"$lint" || true)
[ -z "$lint" ] || fail "promtool check metrics rejects the exposition: $lint"
say "promtool check metrics accepts the exposition"
wait_for "recording rule instance_pid:varta_beats:rate1m computed for pid $agent" series_for_agent 'instance_pid:varta_beats:rate1m'
wait_for "all $rules_total rules evaluated and healthy" rules_ok
wait_for "VartaUnexpectedReset fires for the reset the file records" fires VartaUnexpectedReset
wait_for "VartaDeclaredAgentMissing fires for the declared agent that never came" missing_alert ghost
missing_alert beat && fail "VartaDeclaredAgentMissing fires for the declared agent that beats"
unexpected=$(firing | grep -vxE 'VartaUnexpectedReset|VartaDeclaredAgentMissing' || true)
[ -z "$unexpected" ] || fail "alerts fire while every agent beats: $unexpected"
say "no other alert fires while every agent beats"

# The failure phase.
kill -STOP "$agent"
say "agent $agent stopped (SIGSTOP)"
"$tmp/loadgen" -socket "$tmp/obs.sock" -n 2 -rate 50 -duration 300s >"$tmp/loadgen-fast.log" 2>&1 &
pids+=($!)
say "2 agents beat 50 times a second, over --max-beat-rate 20"
http_get "$addr" /metrics | head -n 1 | grep -q ' 401 ' || fail "/metrics without the token was not refused with 401"
wait_for "VartaAgentStalled fires for pid $agent, named varta-beat" stall_alert
for a in VartaRecoveryFailing VartaEscalated VartaRateLimited VartaMetricsAuthFailures; do
	wait_for "$a fires" fires "$a"
done

wait_for "all $rules_total rules healthy under load" rules_ok
# Every dashboard query, its template variable set to every observer,
# must return at least one series.
n=0 withdata=0 missing=""
while IFS= read -r expr; do
	n=$((n + 1))
	q=${expr//\$instance/.+}
	if http_get "$prom" "/api/v1/query?query=$(urlencode "$q")" | grep -q '"result":\[{'; then
		withdata=$((withdata + 1))
	else
		missing+="  $q"$'\n'
	fi
done < <(sed -n 's/.*"expr": "\(.*\)", "legendFormat".*/\1/p' "$bundle/dashboard.json" | sed 's/\\"/"/g; s/\\\\/\\/g')
[ "$n" -eq "$(grep -c '"expr": ' "$bundle/dashboard.json")" ] || fail "read $n dashboard queries, but dashboard.json has $(grep -c '"expr": ' "$bundle/dashboard.json") (each target must be one line, expr before legendFormat)"
say "$withdata of $n dashboard queries with data, $rules_total rules healthy"
[ -z "$missing" ] || fail "dashboard queries without data:"$'\n'"$missing"
say "ok"
