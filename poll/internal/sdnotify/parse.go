package sdnotify

// Watchdog is what a message's WATCHDOG= asked for.
type Watchdog uint8

const (
	WatchdogNone    Watchdog = iota // no WATCHDOG= line
	WatchdogPing                    // WATCHDOG=1: a beat
	WatchdogTrigger                 // WATCHDOG=trigger: stall now
)

// Kind numbers the keys the observer understands, for counting.
type Kind uint8

const (
	KindWatchdog     Kind = iota // WATCHDOG=1
	KindTrigger                  // WATCHDOG=trigger
	KindWatchdogUsec             // WATCHDOG_USEC=
	KindReady                    // READY=1
	KindReloading                // RELOADING=1
	KindStopping                 // STOPPING=1
	KindStatus                   // STATUS=
	KindMainPid                  // MAINPID=
	KindBarrier                  // BARRIER=1
	KindIgnored                  // a key of systemd's the observer has no use for (FDSTORE=, ERRNO=, ...)
	NumKinds
)

// KindLabels are the kind label values of varta_notify_messages_total.
var KindLabels = [NumKinds]string{"watchdog", "trigger", "watchdog_usec", "ready", "reloading", "stopping",
	"status", "mainpid", "barrier", "ignored"}

// Message is one parsed notify datagram. Status aliases the parsed bytes.
type Message struct {
	Watchdog  Watchdog
	Ready     bool
	Reloading bool
	Stopping  bool
	Barrier   bool
	HasUsec   bool
	Usec      uint64 // WATCHDOG_USEC=, > 0 when HasUsec
	HasStatus bool
	Status    []byte
	MainPid   uint32          // MAINPID=, ≥ 1; 0 when absent
	Kinds     [NumKinds]uint8 // lines of each kind (saturating)
	Lines     int             // KEY=VALUE lines, known or not
	Unknown   int             // lines with a key systemd does not define
	Bad       int             // lines that are not KEY=VALUE, or a known key with a value it cannot take
	BadUsec   bool            // WATCHDOG_USEC= was 0, not a number, or too large
}

// ignoredKeys are systemd's other notify keys: understood, and of no use
// to a liveness observer. They are counted as "ignored", not as unknown.
var ignoredKeys = [...]string{"NOTIFYACCESS", "ERRNO", "BUSERROR", "VARLINKERROR", "EXIT_STATUS",
	"MONOTONIC_USEC", "EXTEND_TIMEOUT_USEC", "FDSTORE", "FDSTOREREMOVE", "FDNAME", "FDPOLL",
	"WATCHDOG_PID", "X_SYSTEMD_UNIT_ACTIVE", "RELOADING_USEC"}

// Parse reads msg, lines of KEY=VALUE separated by '\n' (empty lines
// skipped), into m, which it resets first. Later lines win over earlier
// ones with the same key. A message holding a NUL byte is refused whole
// (systemd does the same): one Bad, nothing else. Parse never allocates.
func Parse(msg []byte, m *Message) {
	*m = Message{}
	for _, c := range msg {
		if c == 0 {
			m.Bad = 1
			return
		}
	}
	for len(msg) > 0 {
		line := msg
		next := []byte(nil)
		for i, c := range msg {
			if c == '\n' {
				line, next = msg[:i], msg[i+1:]
				break
			}
		}
		msg = next
		if len(line) > 0 {
			m.line(line)
		}
	}
}

// line applies one non-empty line.
func (m *Message) line(line []byte) {
	eq := -1
	for i, c := range line {
		if c == '=' {
			eq = i
			break
		}
	}
	if eq <= 0 {
		m.Bad++
		return
	}
	m.Lines++
	key, val := line[:eq], line[eq+1:]
	switch string(key) { // a switch on a conversion does not allocate

	case "WATCHDOG":
		switch {
		case is(val, "1"):
			m.Watchdog = WatchdogPing
			m.count(KindWatchdog)
		case is(val, "trigger"):
			m.Watchdog = WatchdogTrigger
			m.count(KindTrigger)
		default:
			m.Bad++
		}
	case "WATCHDOG_USEC":
		if v, ok := decimal(val); ok && v > 0 {
			m.HasUsec, m.Usec, m.BadUsec = true, v, false
			m.count(KindWatchdogUsec)
		} else {
			m.BadUsec = true
			m.Bad++
		}
	case "READY":
		m.Ready = m.flag(val, KindReady)
	case "RELOADING":
		m.Reloading = m.flag(val, KindReloading)
	case "STOPPING":
		m.Stopping = m.flag(val, KindStopping)
	case "BARRIER":
		m.Barrier = m.flag(val, KindBarrier)
	case "STATUS":
		m.HasStatus, m.Status = true, val
		m.count(KindStatus)
	case "MAINPID":
		if v, ok := decimal(val); ok && v >= 1 && v <= 1<<32-1 {
			m.MainPid = uint32(v)
			m.count(KindMainPid)
		} else {
			m.Bad++
		}
	default:
		for _, k := range ignoredKeys {
			if is(key, k) {
				m.count(KindIgnored)
				return
			}
		}
		m.Unknown++
	}
}

// flag takes a "1" for key kind k; anything else is a bad line.
func (m *Message) flag(val []byte, k Kind) bool {
	if !is(val, "1") {
		m.Bad++
		return false
	}
	m.count(k)
	return true
}

func (m *Message) count(k Kind) {
	if m.Kinds[k] < 255 {
		m.Kinds[k]++
	}
}

// is compares b with s; a conversion compared at once does not allocate.
func is(b []byte, s string) bool { return string(b) == s }

// decimal parses an unsigned decimal of at most 19 digits (no sign, no
// spaces, no leading '+'), as systemd's safe_atou64 takes it.
func decimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
