package poll

import (
	"math"

	"github.com/varta-go/varta/vlp"
)

// Parent beats (--allow-parent-beats): a shell-script daemon beats by
// running `varta-beat --parent` in its loop. Each varta-beat is a new,
// short-lived process, but its frames carry the pid of its parent, the
// shell, so the observer tracks ONE agent, the shell, instead of one
// one-shot agent per varta-beat run.
//
// Identity. A frame whose pid differs from its sender's kernel-reported
// pid (SCM_CREDENTIALS) is accepted as a parent beat only if
//
//   - --allow-parent-beats is set,
//   - the sender's uid is allowed (--allow-uid; checked before, as for
//     every frame), and
//   - the frame's pid is the sender's parent: field 4 (ppid) of
//     /proc/<sender>/stat, read when the frame is handled.
//
// A process can thus beat only for its own parent, never for any other
// pid. Everything else goes on to the cross-namespace check and is refused
// there as an auth_failure mismatch, as without the flag. Parent beats are
// kernel-attested like any UDS beat (origin uds): recovery may run for the
// parent's pid, and the parent's pidfd watches its exit.
//
// The race, and its limit. The parent is read from /proc while the frame
// is handled, after the sender may have exited. A sender that has exited
// but not been reaped still shows its ppid (a zombie keeps its stat file);
// a sender its parent has already reaped has no /proc entry left, and its
// frame is refused (auth_failure mismatch) and counted as
// varta_parent_beats_total{result="sender_gone"}. varta-beat --parent
// narrows that window: after its last frame it waits until the observer
// has dequeued it (SIOCOUTQ reads 0) before exiting. A pid recycled within
// the window to another child of the claimed parent would pass the check;
// it would have to be a child of that very parent, so nothing is gained
// by it.
//
// Nonces. Every varta-beat process would start its session at nonce 1,
// which the tracker would drop as a replay after the first run. A parent
// session instead uses CLOCK_MONOTONIC nanoseconds as nonces (and as
// timestamps, for dying gasps): system-wide and rising, so successive and
// even concurrent varta-beat children of one shell produce a rising
// sequence for the shell's pid, and the tracker's usual rules (strictly
// rising nonce, terminal frames by rising timestamp) apply unchanged. A
// frame delivered late, or sent again, carries an older nonce and is
// dropped as out of order, exactly as for any agent. The clock restarts
// at boot, when every pid and the observer restart too. A program must
// not mix its own beats (nonces from 1) with parent beats from its
// children on one pid: the clock nonces would outrun its own.

// parentCounts feed varta_parent_beats_total{result}.
type parentCounts struct {
	verified   uint64 // the frame's pid was the sender's parent
	senderGone uint64 // the sender's /proc entry was gone
}

// otherPid classifies a frame whose pid is not its sender's kernel pid: a
// parent beat, an agent in a child pid namespace, or a spoof. It reports
// whether the frame may be tracked (under f.Pid, which it may rewrite).
func (o *observer) otherPid(now int64, f *vlp.Frame, sender uint32) bool {
	if o.cfg.Ops.AllowParentBeats && sender != 0 && o.ops != nil {
		ppid, ok := ProcParentPid(sender)
		switch {
		case !ok:
			o.ops.parent.senderGone++
			o.refuse(now, f.Pid, MismatchAuthFailure, &o.c.AuthFailures,
				"parent beat refused: the sender exited before its parent could be checked")
			return false
		case ppid == f.Pid:
			o.ops.parent.verified++
			return true
		}
	}
	return o.crossNamespace(now, f, sender)
}

// procPPidField is the 1-based field number of ppid in /proc/PID/stat.
const procPPidField = 4

// ProcParentPid returns field 4 (ppid) of /proc/<pid>/stat, or false when
// the process no longer exists (or the file cannot be parsed). Like
// ProcStartTime it reads into stack buffers and never allocates.
func ProcParentPid(pid uint32) (uint32, bool) {
	v, ok := procStatNumber(pid, procPPidField)
	if !ok || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}
