package control

import (
	"math"
	"runtime"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/recovery/resetreason"
	"github.com/varta-go/varta/vlp"
)

// The states status reports for an agent.
const (
	StateOK       = "ok"       // its last frame said ok
	StateDegraded = "degraded" // its last frame said degraded
	StateCritical = "critical" // its last frame said critical (a dying gasp too)
	StateStalled  = "stalled"  // silent beyond the threshold
	StateExited   = "exited"   // its process was seen to die (--on-exit report keeps it until evicted)
	// StateMissing is a declared agent (--agents-file) not beating within
	// its expect-within-ms: a row without a pid, after the tracked ones.
	StateMissing = "missing"
)

// maxRow bounds one rendered row (text or JSON: a 15-byte name and a
// 64-byte status text escaped at 6 bytes a byte, a 32-byte agent name),
// so a fill renders rows only while that much room is left.
const maxRow = 1024

type respKind uint8

const (
	respReply respKind = iota // out holds the whole reply already
	respText
	respJSON
)

// textHeader names the text columns.
const textHeader = "PID        NAME             ORIGIN      STATE     LAST_BEAT   BEATS       STALLS    RECOVERIES  LAST_RECOVERY               PAUSED  HELD    AGENT                             STATUS\n"

// fill renders the next part of c's response into c.out (empty on entry):
// the header, rows in pid order above c.cursor while room is left, and at
// the end the summary. It costs a binary search and the rows rendered.
func (s *Server) fill(c *conn, now int64) {
	if c.resp == respReply {
		c.done = true
		return
	}
	if !c.started {
		c.started = true
		if c.resp == respText {
			c.out = append(c.out, textHeader...)
		} else {
			c.out = append(c.out, `{"agents":[`...)
		}
	}
	i := len(s.snap)
	if c.cursor < math.MaxUint32 {
		i, _ = slices.BinarySearch(s.snap, c.cursor+1) // the first pid above the cursor
	}
	for ; i < len(s.snap); i++ {
		if cap(c.out)-len(c.out) < maxRow {
			return
		}
		pid := s.snap[i]
		c.cursor = pid
		sl := s.cfg.Tracker.Lookup(pid)
		if sl == nil {
			continue // gone since the snapshot
		}
		if c.resp == respText {
			c.out = s.textRow(c.out, sl, now)
		} else {
			if c.rows > 0 {
				c.out = append(c.out, ',')
			}
			c.out = s.jsonRow(c.out, sl, now)
		}
		c.rows++
		if sl.Paused {
			c.paused++
		}
	}
	if d := s.cfg.Declared; d != nil {
		for ; c.mcur < d.Len(); c.mcur++ {
			if cap(c.out)-len(c.out) < maxRow {
				return
			}
			name, missing := d.Missing(c.mcur)
			if !missing {
				continue
			}
			if c.resp == respText {
				row := len(c.out)
				c.out = append(c.out, "-          -                -           "+StateMissing...)
				c.out = append(append(pad(c.out, row, 132), "-       "...), name...)
				c.out = append(append(pad(c.out, row, 174), '-'), '\n')
			} else {
				if c.rows > 0 {
					c.out = append(c.out, ',')
				}
				c.out = append(c.out, `{"pid":null,"name":null,"origin":null,"state":"`+StateMissing+`","agent":`...)
				c.out = append(appendJSONString(c.out, []byte(name)), `,"status_text":null}`...)
			}
			c.rows++
		}
	}
	if cap(c.out)-len(c.out) >= maxRow {
		s.summary(c, now)
		c.done = true
	}
}

// state is the word status shows for sl.
func (s *Server) state(sl *track.Slot) string {
	if x := s.cfg.Exits; x != nil {
		if id := s.cfg.Tracker.ID(sl.Pid); id != track.NoSlot {
			if e := x.Entry(id); e.Reported && e.Pid == sl.Pid && e.Start == sl.StartTime {
				return StateExited
			}
		}
	}
	if sl.Stalled {
		return StateStalled
	}
	switch sl.Status {
	case vlp.Ok:
		return StateOK
	case vlp.Degraded:
		return StateDegraded
	}
	return StateCritical
}

// agent is the declared name of sl's agent, "" for none.
func (s *Server) agent(sl *track.Slot) string {
	if s.cfg.Declared == nil {
		return ""
	}
	return s.cfg.Declared.Name(sl)
}

// text is the agent's status text (sd_notify STATUS=), kept beside its slot.
func (s *Server) text(sl *track.Slot) []byte {
	tr := s.cfg.Tracker
	return tr.Text(tr.ID(sl.Pid))
}

// lastRecovery is the label of sl's last recovery outcome, "" for none.
func lastRecovery(sl *track.Slot) string {
	if sl.LastOutcome == 0 {
		return ""
	}
	return recovery.Outcome(sl.LastOutcome - 1).String()
}

func (s *Server) textRow(b []byte, sl *track.Slot, now int64) []byte {
	start := len(b)
	b = appendUint(b, uint64(sl.Pid))
	b = pad(b, start, 11)
	if sl.NameLen == 0 {
		b = append(b, '-')
	} else {
		b = appendTextName(b, sl.NameBytes())
	}
	b = pad(b, start, 28)
	b = append(b, sl.Origin.String()...)
	b = pad(b, start, 40)
	b = append(b, s.state(sl)...)
	b = pad(b, start, 50)
	b = strconv.AppendFloat(b, float64(now-sl.LastArrival)/1e9, 'f', 1, 64)
	b = append(b, 's')
	b = pad(b, start, 62)
	b = appendUint(b, sl.Beats)
	b = pad(b, start, 74)
	b = appendUint(b, sl.Stalls)
	b = pad(b, start, 84)
	b = appendUint(b, uint64(sl.Recoveries))
	b = pad(b, start, 96)
	if r := lastRecovery(sl); r != "" {
		b = append(b, r...)
	} else {
		b = append(b, '-')
	}
	b = pad(b, start, 124)
	if sl.Paused {
		b = append(b, "yes"...)
	} else {
		b = append(b, '-')
	}
	b = pad(b, start, 132)
	b = appendUint(b, uint64(sl.Held))
	b = pad(b, start, 140)
	if agent := s.agent(sl); agent == "" {
		b = append(b, '-')
	} else {
		b = append(b, agent...)
	}
	b = pad(b, start, 174)
	if text := s.text(sl); len(text) == 0 {
		b = append(b, '-')
	} else {
		b = appendTextName(b, text)
	}
	return append(b, '\n')
}

func (s *Server) jsonRow(b []byte, sl *track.Slot, now int64) []byte {
	b = append(b, `{"pid":`...)
	b = appendUint(b, uint64(sl.Pid))
	b = append(b, `,"name":`...)
	b = appendJSONString(b, sl.NameBytes())
	b = append(b, `,"origin":"`...)
	b = append(b, sl.Origin.String()...)
	b = append(b, `","state":"`...)
	b = append(b, s.state(sl)...)
	b = append(b, `","last_beat_seconds":`...)
	b = strconv.AppendFloat(b, float64(now-sl.LastArrival)/1e9, 'f', 3, 64)
	b = append(b, `,"beats":`...)
	b = appendUint(b, sl.Beats)
	b = append(b, `,"stalls":`...)
	b = appendUint(b, sl.Stalls)
	b = append(b, `,"recoveries":`...)
	b = appendUint(b, uint64(sl.Recoveries))
	b = append(b, `,"last_recovery":`...)
	if r := lastRecovery(sl); r != "" {
		b = append(b, '"')
		b = append(b, r...)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"paused":`...)
	b = strconv.AppendBool(b, sl.Paused)
	b = append(b, `,"held":`...)
	b = appendUint(b, uint64(sl.Held))
	b = append(b, `,"agent":`...)
	if agent := s.agent(sl); agent == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, []byte(agent))
	}
	b = append(b, `,"status_text":`...)
	if text := s.text(sl); len(text) == 0 {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, text)
	}
	return append(b, '}')
}

// summary ends a status response: version, uptime, agents shown (and
// how many paused), the table's capacity, recovery children running.
func (s *Server) summary(c *conn, now int64) {
	b := c.out
	up := float64(now-s.cfg.Start) / 1e9
	running := 0
	if s.cfg.Rec != nil {
		running = s.cfg.Rec.Outstanding()
	}
	if c.resp == respText {
		b = append(b, "varta-watch "...)
		b = append(b, s.cfg.Version...)
		b = append(b, " up "...)
		b = strconv.AppendFloat(b, up, 'f', 1, 64)
		b = append(b, "s: "...)
		b = appendUint(b, uint64(c.rows))
		b = append(b, " agents ("...)
		b = appendUint(b, uint64(c.paused))
		b = append(b, " paused) of "...)
		b = appendUint(b, uint64(s.cfg.Tracker.Capacity()))
		b = append(b, ", "...)
		b = appendUint(b, uint64(running))
		b = append(b, " recovery children running"...)
		if r, ok := s.reset(); ok {
			b = append(b, "; "...)
			b = appendUint(b, r.Resets)
			b = append(b, " resets on record"...)
			if r.Kind != "" {
				b = append(b, ", the last "...)
				b = appendTextName(b, []byte(r.Kind))
				b = append(b, ": "...)
				b = appendTextName(b, []byte(r.Reason))
				if r.Agent != "" {
					b = append(b, " (agent "...)
					b = appendTextName(b, []byte(r.Agent))
					b = append(b, ')')
				}
			}
		}
		b = append(b, '\n')
	} else {
		b = append(b, `],"version":`...)
		b = appendJSONString(b, []byte(s.cfg.Version))
		b = append(b, `,"goarch":"`+runtime.GOARCH+`","uptime_seconds":`...)
		b = strconv.AppendFloat(b, up, 'f', 3, 64)
		b = append(b, `,"agent_count":`...)
		b = appendUint(b, uint64(c.rows))
		b = append(b, `,"paused_count":`...)
		b = appendUint(b, uint64(c.paused))
		b = append(b, `,"capacity":`...)
		b = appendUint(b, uint64(s.cfg.Tracker.Capacity()))
		b = append(b, `,"recovery_running":`...)
		b = appendUint(b, uint64(running))
		if r, ok := s.reset(); ok {
			b = append(b, `,"resets":`...)
			b = appendUint(b, r.Resets)
			b = append(b, `,"last_reset":`...)
			if r.Kind == "" {
				b = append(b, "null"...)
			} else {
				b = append(b, `{"kind":`...)
				b = appendJSONString(b, []byte(r.Kind))
				b = append(b, `,"reason":`...)
				b = appendJSONString(b, []byte(r.Reason))
				b = append(b, `,"agent":`...)
				b = appendJSONString(b, []byte(r.Agent))
				b = append(b, '}')
			}
		}
		b = append(b, "}\n"...)
	}
	c.out = b
}

// reset is the reset record for the summary (Config.Reset).
func (s *Server) reset() (resetreason.File, bool) {
	if s.cfg.Reset == nil {
		return resetreason.File{}, false
	}
	return s.cfg.Reset()
}

// pad appends spaces until the row (from start) is col bytes wide, or
// one space when it is already wider.
func pad(b []byte, start, col int) []byte {
	if len(b)-start >= col {
		return append(b, ' ')
	}
	for len(b)-start < col {
		b = append(b, ' ')
	}
	return b
}

func appendUint(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 10) }

const hexDigits = "0123456789abcdef"

// appendTextName writes an agent's name (bytes it chose) for a text
// column: printable ASCII but space and backslash as it is, every other
// byte as \xNN, so a name cannot break the columns or the terminal.
func appendTextName(b, name []byte) []byte {
	for _, ch := range name {
		if ch > ' ' && ch < 0x7f && ch != '\\' {
			b = append(b, ch)
			continue
		}
		b = append(b, '\\', 'x', hexDigits[ch>>4], hexDigits[ch&15])
	}
	return b
}

// appendJSONString writes v as a JSON string: valid UTF-8 as it is, but
// quotes, backslashes and control characters escaped (U+2028 and U+2029
// too, for JavaScript readers); a byte that is not UTF-8 becomes U+FFFD,
// as encoding/json does, since JSON text must be UTF-8.
func appendJSONString(b, v []byte) []byte {
	b = append(b, '"')
	for len(v) > 0 {
		r, size := utf8.DecodeRune(v)
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			b = append(b, '\\', 'u')
			b = append(b, hexDigits[r>>12&15], hexDigits[r>>8&15], hexDigits[r>>4&15], hexDigits[r&15])
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		default:
			b = append(b, v[:size]...)
		}
		v = v[size:]
	}
	return append(b, '"')
}
