package main

const helpText = `usage: varta-watch --socket PATH --threshold-ms MS [flags]
       varta-watch audit verify FILE

Watch VLP heartbeats on a Unix datagram socket (and UDP, if asked) and act
when an agent stalls.

Required:
  --socket PATH                   bind the observer's datagram socket here
  --threshold-ms MS               silence before a stall (at least 10)

Socket and loop:
  --socket-mode OCTAL             socket file mode, set at bind (default 0600)
  --read-timeout-ms MS            longest single poll wait (default 100)
  --allow-uid UID[,UID]           sender uids allowed to beat (default: ours)
  --allow-cross-namespace-agents  admit agents from another pid namespace
  --clock-source monotonic|boottime
                                  boottime counts suspend as silence
                                  (default monotonic)
  --allow-parent-beats            accept frames for the sender's parent pid
                                  (varta-beat --parent in a shell loop)

Tracking:
  --tracker-capacity N            fixed pid-table size, 1..65536 (default 256)
  --tracker-eviction-policy strict|balanced
                                  when full, strict evicts only long-stalled
                                  pids; balanced any pid silent 10x threshold
                                  (default strict)
  --max-beat-rate N               beats/s per pid, 0 = off (default 100)
  --global-beat-rate N            beats/s in all, 0 = off (default 5000)
  --global-beat-burst N           global burst (default 10000)
  --on-exit report|recover|ignore when a kernel-attested agent dies (pidfd,
                                  else /proc at stall): report writes an
                                  exit event; recover also runs recovery
                                  at once and forgets the pid (default report)

UDP agents (off unless a listener is given):
  --udp-addr IP:PORT              also take frames over UDP, IPv4 or [IPv6]
  --udp-port N                    the Rust original's form of --udp-addr: the
  --udp-bind-addr IP              port, and the IP (default 127.0.0.1 with
                                  keys, 0.0.0.0 for plain UDP only)
  --key-file F                    secure UDP: the current shared key
  --accepted-key-file F           more shared keys, one per line, for key
                                  rotation: every key is tried on every frame
  --master-key-file F             secure UDP: master key of per-agent keys
                                  Key files: 64 hex characters per key, a
                                  regular file we own, mode 0600, no symlink
  --i-accept-plaintext-udp        also take plain frames: unauthenticated,
                                  anyone who reaches the port can beat
  --udp-recovery                  let UDP agents' stalls run the recovery
                                  command (default: only socket agents,
                                  whose pid the kernel vouches for)
  --plaintext-udp-i-accept-recovery-on-unauthenticated-transport
  --secure-udp-i-accept-recovery-on-unauthenticated-transport
                                  the same for plain or for secure frames
                                  only (the Rust original's spellings)

Recovery:
  --recovery-exec CMD             program and arguments, no shell; {pid} is
                                  replaced by the stalled pid, else appended
  --recovery-exec-file PATH       the same read from a 0600 file we own
  --recovery-debounce-ms MS       per-pid minimum interval (default 1000)
  --recovery-timeout-ms MS        kill the child's group after MS (min 100)
  --recovery-env K=V              add to the child's environment (repeatable)
  --recovery-inherit-env          child inherits our environment
  --recovery-capture-bytes N      capture up to N bytes of child output
                                  for the audit log, 0..1048576 (default 0: off)
  --recovery-audit-file PATH      hash-chained audit log of every decision

Output:
  --export-file PATH              append one tab-separated line per event
                                  (- for standard output)
  --export-file-max-bytes N       rotate at N bytes, keeping 5 generations
  --prom-addr IP:PORT             serve /metrics and /healthz
  --prom-token-file PATH          require Authorization: Bearer <token>;
                                  needed when --prom-addr is not loopback

Life cycle:
  --shutdown-grace-ms MS          time to stop recovery children (default 5000)
  --shutdown-after-secs S         exit cleanly after S seconds
  --self-watchdog-secs S          abort with a stack dump (exit 134) when the
                                  loop makes no progress for S s; 0 = off
                                  (default 4 when $WATCHDOG_USEC is set)
  --hw-watchdog PATH              open a watchdog device, kick it every
                                  second, magic-close it on a clean exit
  --heartbeat-file PATH           rewrite "<loops> <ns>" atomically, at most
                                  every 100 ms (put it on a tmpfs)
  --version                       print version and exit
  -h, --help                      show this help

Signals: SIGINT/SIGTERM exit cleanly, SIGHUP reopens the export and audit
files. Under systemd (Type=notify) it sends READY=1, WATCHDOG=1 at half of
WatchdogSec= while the loop makes progress, and STOPPING=1. Exit status: 0
clean, 1 start-up or runtime failure, 2 usage error, 134 wedged loop.
`
