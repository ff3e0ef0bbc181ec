package scrape

import (
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/promtext"
)

// The per-pid families, in the order Pids writes them; a Cursor's Part is
// an index into this list, then len(pidFamilies) once they are all out.
var pidFamilies = [...]struct {
	name, help string
	typ        promtext.Type
}{
	{"varta_beats_total", "Heartbeat frames accepted from this pid.", promtext.TypeCounter},
	{"varta_stalls_total", "Stalls raised for this pid.", promtext.TypeCounter},
	{"varta_status", "Current status: 0 ok, 1 degraded, 2 critical, 3 stall.", promtext.TypeGauge},
	{"varta_last_beat_age_seconds", "Seconds since this pid's last accepted beat.", promtext.TypeGauge},
	{"varta_agent_info", "Who each tracked pid is: its process name and program as the kernel shows them (bytes the agent chose), and the transport; always 1.", promtext.TypeGauge},
}

const (
	partInfo = len(pidFamilies) - 1
	// rowRoom bounds a row of the numeric families: the longest family
	// name, a 10-digit pid, a 20-digit value or a float.
	rowRoom = 128
	// headRoom bounds a family's HELP and TYPE lines.
	headRoom = 320
)

// Pids writes the next rows of the per-pid families into the piece e holds
// (promtext.Config.Stream): every tracked pid in increasing pid order,
// family after family, as many rows as fit in e.Room(), and at least one
// family head with a row in an empty piece. The pid order is taken once,
// at the start of a body, into c.Keys, and every piece of the body follows
// it: a pid that leaves the table while the body is being sent is skipped
// from then on (its rows in families already sent stay), and a pid that
// arrives then waits for the next scrape. now is the observer's clock, for
// the beat ages.
//
// It reports true when every per-pid row is out and the piece is still
// empty: the caller writes the fixed families into it then, and ends the
// body. Nothing allocates when c.Keys has room for the table.
func Pids(e *promtext.Encoder, c *promtext.Cursor, tr *track.Tracker, paths *track.Paths, now int64) bool {
	if c.Part == 0 && c.Row == 0 {
		c.Keys = tr.AppendSortedKeys(c.Keys[:0])
	}
	for ; c.Part < len(pidFamilies); c.Part, c.Row = c.Part+1, 0 {
		f := &pidFamilies[c.Part]
		fresh := c.Row == 0
		if fresh {
			// The head goes out with room for a first row, so that a
			// piece never ends right after it: Row > 0 means the head
			// is out, and the next piece resumes the family.
			if len(e.Bytes()) > 0 && e.Room() < headRoom+rowBound(c, tr, paths) {
				return false
			}
			e.Family(f.name, f.help, f.typ)
		} else {
			e.Resume(f.name, f.typ)
		}
		for ; c.Row < len(c.Keys); fresh = false {
			if !fresh && len(e.Bytes()) > 0 && e.Room() < rowBound(c, tr, paths) {
				return false
			}
			s := tr.AtKey(c.Keys[c.Row])
			c.Row++
			if s == nil {
				continue // left the table since the snapshot
			}
			row(e, c.Part, s, paths, now)
		}
	}
	return len(e.Bytes()) == 0
}

// row writes pid s's row of the family part.
func row(e *promtext.Encoder, part int, s *track.Slot, paths *track.Paths, now int64) {
	e.LabelUint("pid", uint64(s.Pid))
	switch part {
	case 0:
		e.Uint(s.Beats)
	case 1:
		e.Uint(s.Stalls)
	case 2:
		e.Uint(uint64(s.Effective()))
	case 3:
		e.Float(float64(now-s.LastArrival) / 1e9)
	case partInfo:
		e.LabelBytes("name", s.NameBytes())
		e.LabelBytes("exe", exe(s, paths))
		e.Label("origin", s.Origin.String())
		e.Uint(1)
	}
}

// exe is s's program path; an unreadable one falls back to the name.
func exe(s *track.Slot, paths *track.Paths) []byte {
	if p := paths.Get(s.Exe); p != nil {
		return p
	}
	return s.NameBytes()
}

// rowBound is the most bytes the row at c's place can take: an info row
// carries the agent's name and program path, each byte of which may be
// escaped into up to three (an invalid byte becomes U+FFFD).
func rowBound(c *promtext.Cursor, tr *track.Tracker, paths *track.Paths) int {
	if c.Part != partInfo || c.Row >= len(c.Keys) {
		return rowRoom
	}
	s := tr.AtKey(c.Keys[c.Row])
	if s == nil {
		return rowRoom
	}
	return 2*rowRoom + 3*(len(s.NameBytes())+len(exe(s, paths)))
}
