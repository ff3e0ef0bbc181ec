package recoverylog

import (
	"bytes"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/recovery"
)

// Ended logs a recovery child that ended any way but a clean exit 0: how
// it ended, and the first line of its output when output is captured, so
// a command that exits 127 (not found) or 2 (usage), or hangs until
// killed, is seen. name is the agent's name field.
func Ended(l *sink.Logger, c *recovery.Completion, name sink.Field) {
	if c.Outcome == recovery.OutcomeReapedZero {
		return
	}
	how := "exited"
	switch {
	case c.Outcome == recovery.OutcomeKilled:
		how = "killed by the observer (--recovery-timeout-ms or shutdown)"
	case c.Signal != 0:
		how = "killed by a signal"
	}
	l.Warn("recovery command failed", sink.Num("pid", int64(c.Agent)), name, sink.Str("how", how),
		sink.Num("exit", int64(c.ExitCode)), sink.Str("signal", signalName(c.Signal)),
		sink.Num("ms", c.Duration.Milliseconds()), sink.Str("output", firstLine(c.Captured)))
}

// firstLine is the first line of a child's captured output, at most 200
// bytes, "-" when there is none.
func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b[:min(len(b), 200)])
}

// signalName spells a signal number for a log line; "-" for none.
func signalName(sig syscall.Signal) string {
	if sig == 0 {
		return "-"
	}
	return unix.SignalName(sig)
}

// Agent is what a recovery command is told about the agent it recovers.
type Agent struct {
	Pid      int32
	Known    bool   // the agent's slot was found: Name, Exe and SilentNs are set
	Name     []byte // as read when the agent was first tracked
	Exe      []byte // its program; nil when unreadable (the name stands in)
	SilentNs int64
	Gone     bool   // no process holds the pid any more
	Declared string // its declared name (--agents-file), "" for none
}

// Env is the environment for a recovery command: VARTA_AGENT_PID,
// VARTA_AGENT_NAME and VARTA_AGENT_EXE (bytes the agent chose, escaped as
// a Go string body so a newline or a byte that is not UTF-8 arrives as \n
// or \xff), VARTA_SILENT_MS, VARTA_AGENT_GONE=1 when no process has
// the pid any more, and VARTA_AGENT_DECLARED=NAME for a declared agent.
func Env(a Agent) []string {
	env := []string{"VARTA_AGENT_PID=" + strconv.Itoa(int(a.Pid))}
	if a.Known {
		exe := a.Exe
		if exe == nil {
			exe = a.Name // an unreadable program path falls back to the name
		}
		env = append(env, "VARTA_AGENT_NAME="+envEscape(a.Name),
			"VARTA_AGENT_EXE="+envEscape(exe),
			"VARTA_SILENT_MS="+strconv.FormatInt(a.SilentNs/1e6, 10))
	}
	if a.Gone {
		env = append(env, "VARTA_AGENT_GONE=1")
	}
	if a.Declared != "" {
		env = append(env, "VARTA_AGENT_DECLARED="+a.Declared)
	}
	return env
}

// envEscape quotes b the way Go spells a string's body: printable UTF-8
// as it is, everything else escaped, so an agent's chosen name cannot put
// a newline or a control byte into a shell script that reads it.
func envEscape(b []byte) string {
	q := strconv.Quote(string(b))
	return q[1 : len(q)-1]
}

// AuditOpened says what opening the audit log file found, loudly when it
// found records missing or another layout.
func AuditOpened(l *sink.Logger, file string, a recovery.AuditOpen) {
	if a.Reason == "" {
		return
	}
	kv := []sink.Field{sink.Str("file", file), sink.Str("boot", a.Reason)}
	if a.MovedTo != "" {
		kv = append(kv, sink.Str("moved_to", a.MovedTo))
	}
	if a.Repaired > 0 {
		kv = append(kv, sink.Num("repaired_bytes", a.Repaired))
	}
	if a.Missing > 0 {
		kv = append(kv, sink.Num("missing_records", int64(a.Missing)))
	}
	if a.Note != "" {
		kv = append(kv, sink.Str("why", a.Note))
	}
	switch a.Reason {
	case recovery.BootFresh, recovery.BootResume:
		if a.Note == "" {
			l.Info("audit log opened", kv...)
			return
		}
		l.Warn("audit log opened", kv...)
	case recovery.BootCorruptTail:
		l.Warn("audit log opened: it does not end with the last record written; records may be lost", kv...)
	default:
		l.Warn("audit log opened: the old log was in another layout and was moved aside", kv...)
	}
}
