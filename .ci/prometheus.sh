#!/usr/bin/env bash
# A real Prometheus against a real varta-watch (cmd/varta-watch/README.md §7).
#
# Checks and unit-tests the operator rules in cmd/varta-watch/prometheus,
# then builds varta-watch and varta-beat, runs the observer on loopback with
# a bearer token and an agent beating, and starts Prometheus (Debian's
# prometheus package) scraping it every second with those rules loaded. It
# waits, within a bound, until the target is up, varta_beats_total has a
# series for the agent's pid, a recording rule has computed its beat rate
# and no alert fires; then it stops the agent and waits for
# VartaAgentStalled to fire for that pid. Every process it starts is
# stopped on exit, whatever happens. Run from .ci/run or by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

bundle=cmd/varta-watch/prometheus
limit=60 # seconds for each wait below
begin=$SECONDS

say() { printf 'prometheus.sh: %s (t=%ds)\n' "$*" $((SECONDS - begin)); }

for tool in prometheus promtool go; do
	command -v "$tool" >/dev/null || { echo "prometheus.sh: $tool is not installed (Debian: apt-get install prometheus)" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
prom=""
stop_all() {
	local p i
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
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

say "build"
go build -o "$tmp/varta-watch" ./cmd/varta-watch
go build -o "$tmp/varta-beat" ./cmd/varta-beat

token="ci-$RANDOM$RANDOM$RANDOM"
(umask 077 && printf '%s\n' "$token" >"$tmp/token")

# Port 0: the observer picks a free port and logs it, so nothing races.
"$tmp/varta-watch" --socket "$tmp/obs.sock" --threshold-ms 3000 \
	--prom-addr 127.0.0.1:0 --prom-token-file "$tmp/token" 2>"$tmp/varta-watch.log" &
pids+=($!)
wait_for "observer listening" grep -q 'msg="listening"' "$tmp/varta-watch.log"
addr=$(sed -n 's/.*msg="serving metrics" addr=\([^ ]*\).*/\1/p' "$tmp/varta-watch.log" | head -n 1)
[ -n "$addr" ] || fail "the observer did not log its metrics address"
say "observer serves metrics on $addr"
http_get "$addr" /metrics | head -n 1 | grep -q ' 401 ' || fail "/metrics without the token was not refused with 401"
http_get "$addr" /metrics "$token" | grep -q '^varta_build_info{' || fail "/metrics with the token has no varta_build_info"

"$tmp/varta-beat" --socket "$tmp/obs.sock" --count 1000000 --interval-ms 250 2>"$tmp/varta-beat.log" &
agent=$!
pids+=($agent)
say "agent pid $agent beating every 250 ms"

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
rules_healthy() {
	local r
	r=$(http_get "$prom" /api/v1/rules)
	grep -q '"name":"varta-watch.alerts"' <<<"$r" && grep -q '"name":"varta-watch.rules"' <<<"$r" &&
		! grep -q '"health":"err"' <<<"$r"
}
stall_alert() {
	http_get "$prom" /api/v1/alerts | sed 's/{"labels":/\n&/g' | grep -F '"alertname":"VartaAgentStalled"' |
		grep -F "\"pid\":\"$agent\"" | grep -q '"state":"firing"'
}

wait_for "target up in /api/v1/targets" target_up
wait_for "varta_beats_total has a series for pid $agent" series_for_agent varta_beats_total
# The exposition itself, with the agent's rows, as promtool reads it
# (HTTP/1.0: the body ends at the close; Prometheus's own scrapes above are
# HTTP/1.1 and get it chunked).
http_get "$addr" /metrics "$token" | sed '1,/^\r$/d' >"$tmp/exposition.txt"
grep -q "^varta_beats_total{pid=\"$agent\"}" "$tmp/exposition.txt" || fail "the exposition has no row for pid $agent"
promtool check metrics <"$tmp/exposition.txt" || fail "promtool check metrics rejects the exposition"
say "promtool check metrics accepts the exposition"
wait_for "recording rule instance_pid:varta_beats:rate1m computed for pid $agent" series_for_agent 'instance_pid:varta_beats:rate1m'
wait_for "rules loaded and healthy" rules_healthy
if http_get "$prom" /api/v1/alerts | grep -q '"state":"firing"'; then
	fail "an alert fires while the agent beats: $(http_get "$prom" /api/v1/alerts | tail -n 1)"
fi
say "no alert fires while the agent beats"

kill -TERM "$agent"
wait "$agent" 2>/dev/null || true
say "agent stopped"
wait_for "VartaAgentStalled fires for pid $agent" stall_alert

say "ok"
