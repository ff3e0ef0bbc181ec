#!/usr/bin/env bash
# Runs the shell commands of the documentation, so that what the READMEs
# tell a reader to type keeps working. Usage: bash .ci/doc-commands.sh
#
# Which commands: every fenced block whose info string is `sh` (each line
# is a command; `\` continues a line) or `console` (only lines starting
# with "$ " are commands, the rest is shown output) in README.md and
# cmd/varta-watch/README.md, in order. A block may be preceded, on the
# line right above its opening fence, by one marker:
#
#   <!-- not run in CI: REASON -->   the block is skipped (needs root, a
#                                    board, minutes of time...); the reason
#                                    is printed.
#   <!-- ci: background -->          the block is one long-running observer
#                                    command: it is started in its own
#                                    process group, must log msg="listening"
#                                    within 90 s, and keeps running for the
#                                    following blocks of the same file; at
#                                    the end of the file it gets SIGINT and
#                                    must stop cleanly (log msg="stopped")
#                                    within 15 s.
#
# Any other block runs as a bash script (set -e -o pipefail) with a 60 s
# timeout; a non-zero exit fails this script. How they run:
#   - from a copy of the repository's files in a fresh temporary directory
#     (the checkout is never written to), so `go run ./cmd/...` works;
#   - with varta-watch and varta-beat built from the tree first on PATH;
#   - with every "/tmp/" in a command pointing into that temporary
#     directory instead, and every loopback port (127.0.0.1:PORT) replaced
#     by a port that is free at the time (the same PORT by the same one
#     throughout a file), so a run never meets another program's files,
#     sockets or ports.
# Every process started here is stopped through the pid it was started
# with, also when the script fails. The whole run takes about 30 s.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
docs=(README.md cmd/varta-watch/README.md)

work=$(mktemp -d "${TMPDIR:-/tmp}/varta-doc.XXXXXX")
bg_pids=()
cleanup() {
	local pid
	for pid in "${bg_pids[@]}"; do
		kill -KILL -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "doc-commands: FAIL: $*" >&2
	exit 1
}

# A copy of the tree: tracked files as they are in the working tree.
mkdir -p "$work/repo" "$work/tmp" "$work/bin" "$work/blocks"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$repo" && git ls-files -z | while IFS= read -r -d '' f; do
		[ -e "$f" ] && printf '%s\0' "$f"
	done | tar --null -T - -cf -) | tar -xf - -C "$work/repo"
else
	(cd "$repo" && tar --exclude=./.git -cf - .) | tar -xf - -C "$work/repo"
fi

(cd "$work/repo" && go build -o "$work/bin/" ./cmd/varta-watch ./cmd/varta-beat) ||
	fail "go build of varta-watch and varta-beat"
if ! command -v curl >/dev/null; then
	# The docs use `curl -s URL` for plain-HTTP GETs; without curl, bash's
	# /dev/tcp does the same for those.
	cat >"$work/bin/curl" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
url=""
for a in "$@"; do case "$a" in -*) ;; *) url=$a ;; esac; done
rest=${url#http://}; hostport=${rest%%/*}; path=/${rest#*/}
[ "$rest" = "$hostport" ] && path=/
exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
sed '1,/^\r\{0,1\}$/d' <&3
EOF
	chmod +x "$work/bin/curl"
fi
export PATH="$work/bin:$PATH"

# extract FILE: writes each block to $work/blocks/N.sh and prints
# "N<TAB>mode<TAB>line<TAB>reason" for it, mode being run, background or
# skip.
extract() {
	awk -v dir="$work/blocks" -v tmp="$work/tmp/" -v base="$2" '
	BEGIN { n = base; mode = "run"; inblock = 0 }
	inblock && /^```[ \t]*$/ { inblock = 0; close(out); next }
	inblock {
		line = $0
		if (lang == "console") {
			if (line !~ /^\$ /) next
			line = substr(line, 3)
		}
		gsub("/tmp/", tmp, line)
		print line > out
		next
	}
	/^```(sh|console)[ \t]*$/ {
		lang = substr($0, 4); sub(/[ \t]*$/, "", lang)
		n++; out = dir "/" n ".sh"; printf "" > out; inblock = 1
		m = (prev ~ /^<!-- not run in CI:/) ? "skip" : (prev ~ /^<!-- ci: background -->/) ? "background" : "run"
		r = prev; sub(/^<!-- not run in CI:[ \t]*/, "", r); sub(/[ \t]*-->.*$/, "", r)
		printf "%d\t%s\t%d\t%s\n", n, m, NR, (m == "skip" ? r : "")
		next
	}
	{ prev = $0 }
	' "$1"
}

# port_in_use PORT: whether any TCP or UDP socket here has PORT as its
# local port (/proc/net lists them in hex).
port_in_use() {
	local hex
	hex=$(printf '%04X' "$1")
	awk '{print $2}' /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null | grep -qi -- ":$hex\$"
}

# remap_ports DOC: fills ports with sed arguments that move each loopback
# port of DOC to one that is free now and not handed out before.
taken=" "
remap_ports() {
	local p new tries
	ports=()
	for p in $(grep -oE '127\.0\.0\.1:[0-9]+' "$1" | sort -u | cut -d: -f2); do
		for tries in $(seq 200) fail; do
			[ "$tries" = fail ] && fail "found no free port for $p"
			new=$((20000 + RANDOM % 40000))
			case "$taken" in *" $new "*) continue ;; esac
			port_in_use "$new" || break
		done
		taken+="$new "
		ports+=(-e "s/127\.0\.0\.1:$p\b/127.0.0.1:$new/g")
	done
}

# wait_for LOG PATTERN PID SECONDS: until the log matches or the time is up.
wait_for() {
	local deadline=$((SECONDS + $4))
	while ((SECONDS < deadline)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		[ -n "$3" ] && ! kill -0 "$3" 2>/dev/null && return 1
		sleep 0.2
	done
	return 1
}

stop_background() { # stops this file's background observers, by their pids
	local pid log
	for pid in "${bg_pids[@]}"; do
		log="$work/bg-$pid.log"
		kill -INT -- "-$pid" 2>/dev/null || true
		local deadline=$((SECONDS + 15))
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL -- "-$pid" 2>/dev/null || true
			cat "$log" >&2
			fail "background command (pid $pid) did not stop within 15 s of SIGINT"
		fi
		wait "$pid" 2>/dev/null || true
		grep -q 'msg="stopped"' "$log" || { cat "$log" >&2; fail "background command (pid $pid) did not stop cleanly after SIGINT"; }
		echo "   stopped pid $pid cleanly"
	done
	bg_pids=()
}

start=$SECONDS
count=0
for doc in "${docs[@]}"; do
	[ -f "$repo/$doc" ] || fail "$doc is missing"
	echo "== $doc"
	manifest=$(extract "$repo/$doc" "$count")
	remap_ports "$repo/$doc"
	while IFS=$'\t' read -r n mode line reason; do
		[ -n "$n" ] || continue
		count=$n
		block="$work/blocks/$n.sh"
		((${#ports[@]} == 0)) || sed -i "${ports[@]}" "$block"
		where="$doc:$line"
		case "$mode" in
		skip)
			echo "-- $where: skipped ($reason)"
			;;
		background)
			echo "-- $where: in the background: $(tr '\n' ' ' <"$block")"
			log="$work/bg-$n.log"
			# A non-interactive shell does not make job leaders, so setsid
			# makes this very process the leader of a new group: its pid is
			# the group id the group is later signalled through.
			(cd "$work/repo" && exec setsid bash -e "$block") >"$log" 2>&1 </dev/null &
			pid=$!
			bg_pids+=("$pid")
			mv "$log" "$work/bg-$pid.log"
			log="$work/bg-$pid.log"
			if ! wait_for "$log" 'msg="listening"' "$pid" 90; then
				cat "$log" >&2
				fail "$where: the background command exited or did not log msg=\"listening\" within 90 s"
			fi
			echo "   running as pid $pid"
			;;
		run)
			echo "-- $where: $(tr '\n' ' ' <"$block")"
			if ! (cd "$work/repo" && timeout 60 bash -e -o pipefail "$block" </dev/null); then
				for pid in "${bg_pids[@]}"; do
					echo "   log of background pid $pid:" >&2
					cat "$work/bg-$pid.log" >&2
				done
				fail "$where: the block above exited non-zero (or ran over 60 s)"
			fi
			;;
		esac
	done <<<"$manifest"
	stop_background
done
((count > 0)) || fail "found no command blocks"
echo "doc-commands: ok, $count blocks in ${#docs[@]} files, $((SECONDS - start)) s"
