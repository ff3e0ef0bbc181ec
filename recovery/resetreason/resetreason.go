// Package resetreason is the reset-reason file of varta-watch
// (--reset-reason-file): why the board was last reset, kept on persistent
// storage across the reset, and the boot id that tells a new boot from an
// observer that merely restarted.
//
// The file is a versioned list of key=value lines (Marshal), rewritten
// whole through a temporary file that is fsynced, renamed over the old one,
// and followed by an fsync of the directory, so a reset at any moment
// leaves either the old file or the new one. Reading never trusts it: a
// damaged file is an error the caller logs and ignores, never fatal.
//
// Nothing here runs on the observer's hot path; it allocates freely.
package resetreason

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Header is the first line of the file; the number is the format's
// version, raised when a key changes meaning.
const (
	Header  = "varta-reset-reason "
	Version = 1
)

// MaxBytes bounds what Read accepts: the file is a few hundred bytes, and
// a larger one is not ours.
const MaxBytes = 4096

// Kinds of reset.
const (
	KindControlled = "controlled" // the observer escalated and let the board reset
	KindUnexpected = "unexpected" // a new boot with no controlled reset on record
)

// Reasons of an unexpected reset, from the hardware watchdog's boot status
// (WDIOC_GETBOOTSTATUS) where the driver knows it.
const (
	ReasonEscalation = "escalation"          // controlled: an agent's recovery kept failing
	ReasonWatchdog   = "watchdog"            // the watchdog fired on its own (WDIOF_CARDRESET)
	ReasonPower      = "power"               // the driver saw under- or over-voltage
	ReasonOverheat   = "overheat"            // the driver saw overheating
	ReasonNotWD      = "power_loss_or_panic" // the driver says the watchdog did not reset the board
	ReasonUnknown    = "unknown"             // no watchdog open, or a driver that does not say
)

// File is the content of the reset-reason file.
type File struct {
	SeenBoot string // boot id of the last boot an observer started in
	Resets   uint64 // resets on record, controlled and unexpected
	// Pending is set when a controlled reset was asked for and the boot
	// it was asked in (Boot) has not ended yet.
	Pending bool

	// The last reset; Kind is "" when there was none.
	Kind    string
	Reason  string
	Agent   string // the agent whose failures escalated; "" for an unexpected reset
	Pid     int64
	Failure string // what failed last: exit:N, signal:NAME, killed, spawn_failed, silent
	WallMs  int64  // wall-clock time the reset was decided (controlled) or noticed (unexpected)
	Boot    string // boot id of the boot the reset ended
}

// Marshal returns the file's bytes.
func (f *File) Marshal() []byte {
	kv := [...][2]string{
		{"seen_boot", f.SeenBoot},
		{"resets", strconv.FormatUint(f.Resets, 10)},
		{"pending", strconv.FormatBool(f.Pending)},
		{"kind", f.Kind},
		{"reason", f.Reason},
		{"agent", f.Agent},
		{"pid", strconv.FormatInt(f.Pid, 10)},
		{"failure", f.Failure},
		{"wall_ms", strconv.FormatInt(f.WallMs, 10)},
		{"boot", f.Boot},
	}
	n := len(kv)
	if f.Kind == "" {
		n = 3 // no reset on record: no details
	}
	b := make([]byte, 0, 512)
	b = append(b, Header...)
	b = strconv.AppendInt(b, Version, 10)
	b = append(b, '\n')
	for _, e := range kv[:n] {
		b = append(b, e[0]...)
		b = append(b, '=')
		q := strconv.Quote(e[1])
		b = append(b, q[1:len(q)-1]...) // an agent's name may hold any byte: escaped, one line
		b = append(b, '\n')
	}
	return b
}

// ErrDamaged is what every reason Parse refuses a file wraps.
var ErrDamaged = errors.New("reset-reason file damaged")

// damagedError says where and why a file is damaged.
type damagedError struct{ why string }

func (e *damagedError) Error() string { return ErrDamaged.Error() + ": " + e.why }
func (e *damagedError) Unwrap() error { return ErrDamaged }

func damaged(line int, why string) error {
	if line > 0 {
		why = "line " + strconv.Itoa(line) + ": " + why
	}
	return &damagedError{why}
}

// Parse reads a file made by Marshal. Unknown keys are refused: the file
// is ours alone, and a key we do not know means another version or damage.
func Parse(b []byte) (File, error) {
	var f File
	if len(b) > MaxBytes {
		return f, damaged(0, "longer than "+strconv.Itoa(MaxBytes)+" bytes")
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return f, damaged(0, "empty, or cut short (no final newline)")
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	v, ok := strings.CutPrefix(lines[0], Header)
	if !ok {
		return f, damaged(1, "does not start with "+strconv.Quote(Header+"N"))
	}
	if v != strconv.Itoa(Version) {
		return f, damaged(1, "version "+strconv.Quote(v)+", this observer reads version "+strconv.Itoa(Version))
	}
	seen := map[string]bool{}
	for i, l := range lines[1:] {
		n := i + 2
		k, raw, ok := strings.Cut(l, "=")
		if !ok {
			return f, damaged(n, "not key=value")
		}
		if seen[k] {
			return f, damaged(n, "key "+k+" twice")
		}
		seen[k] = true
		val, err := strconv.Unquote(`"` + raw + `"`)
		if err != nil {
			return f, damaged(n, "value of "+k+" is not an escaped string")
		}
		var perr error
		switch k {
		case "seen_boot":
			f.SeenBoot = val
		case "resets":
			f.Resets, perr = strconv.ParseUint(val, 10, 64)
		case "pending":
			f.Pending, perr = strconv.ParseBool(val)
		case "kind":
			if val != KindControlled && val != KindUnexpected {
				return f, damaged(n, "kind "+strconv.Quote(val)+" is neither controlled nor unexpected")
			}
			f.Kind = val
		case "reason":
			f.Reason = val
		case "agent":
			f.Agent = val
		case "pid":
			f.Pid, perr = strconv.ParseInt(val, 10, 64)
		case "failure":
			f.Failure = val
		case "wall_ms":
			f.WallMs, perr = strconv.ParseInt(val, 10, 64)
		case "boot":
			f.Boot = val
		default:
			return f, damaged(n, "unknown key "+strconv.Quote(k))
		}
		if perr != nil {
			return f, damaged(n, "value of "+k+" is not a number")
		}
	}
	for _, k := range []string{"seen_boot", "resets", "pending"} {
		if !seen[k] {
			return f, damaged(0, "no "+k+" line")
		}
	}
	if f.Kind != "" && (f.Reason == "" || !seen["boot"]) {
		return f, damaged(0, "a reset without its reason or boot")
	}
	if f.Kind == "" && (f.Pending || seen["reason"]) {
		return f, damaged(0, "reset details without a kind line")
	}
	return f, nil
}

// Read reads and parses the file at path. A missing file is an error
// satisfying errors.Is(err, fs.ErrNotExist); a damaged one wraps ErrDamaged.
func Read(path string) (File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return File{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	fh := os.NewFile(uintptr(fd), path)
	defer fh.Close()
	if st, err := fh.Stat(); err != nil || !st.Mode().IsRegular() {
		return File{}, &damagedError{path + " is not a regular file"}
	}
	b := make([]byte, MaxBytes+1)
	n, err := io.ReadFull(fh, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return File{}, &os.PathError{Op: "read", Path: path, Err: err}
	}
	return Parse(b[:n])
}

// Write replaces the file at path with f: a temporary file in the same
// directory is written and fsynced, renamed over path, and the directory
// fsynced, so the reason is on disk before Write returns.
func Write(path string, f *File) error {
	dir := filepath.Dir(path)
	tmp := path + ".tmp"
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return &os.PathError{Op: "open", Path: tmp, Err: err}
	}
	b := f.Marshal()
	for len(b) > 0 && err == nil {
		var n int
		n, err = unix.Write(fd, b)
		if err == unix.EINTR {
			err = nil
		}
		b = b[max(n, 0):]
	}
	if err == nil {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlink(tmp)
		return &os.PathError{Op: "write", Path: tmp, Err: err}
	}
	if err := unix.Rename(tmp, path); err != nil {
		unix.Unlink(tmp)
		return &os.PathError{Op: "rename", Path: tmp, Err: err}
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	if err := unix.Fsync(dfd); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

// BootIDPath is where the kernel gives a random id per boot.
const BootIDPath = "/proc/sys/kernel/random/boot_id"

// ReadBootID returns the id in the file at path (BootIDPath but in tests),
// trimmed; an error when it cannot be read or is empty.
func ReadBootID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" || len(id) > 64 || strings.ContainsAny(id, " \n\t=") {
		return "", errors.New(path + ": not a boot id")
	}
	return id, nil
}

// Watchdog boot-status flags (linux/watchdog.h) that name a cause.
const (
	wdiofOverheat   = 0x0001
	wdiofPowerUnder = 0x0010
	wdiofCardReset  = 0x0020
	wdiofPowerOver  = 0x0040
)

// ReasonFromBootStatus names the cause of an unexpected reset from the
// watchdog driver's boot status; known is false when no watchdog was open
// or the driver does not answer WDIOC_GETBOOTSTATUS (ENOTTY).
func ReasonFromBootStatus(status int, known bool) string {
	switch {
	case !known:
		return ReasonUnknown
	case status&wdiofCardReset != 0:
		return ReasonWatchdog
	case status&(wdiofPowerUnder|wdiofPowerOver) != 0:
		return ReasonPower
	case status&wdiofOverheat != 0:
		return ReasonOverheat
	}
	return ReasonNotWD
}

// What Start found.
type Found uint8

const (
	FoundFirst      Found = iota // no file yet: nothing to say
	FoundSameBoot                // the observer restarted within one boot: not a reset
	FoundControlled              // the controlled reset on record happened
	FoundUnexpected              // a new boot with no controlled reset on record
)

// Start is what an observer starting in boot does with the file it read
// (have false when there was none, or it was damaged): the file to write
// back and what it found. A controlled reset still pending in the same
// boot stays pending: the board has not reset yet. reason is the cause of
// an unexpected reset (ReasonFromBootStatus); wallMs the time now.
func Start(f File, have bool, boot, reason string, wallMs int64) (File, Found) {
	switch {
	case !have:
		return File{SeenBoot: boot}, FoundFirst
	case f.SeenBoot == boot:
		return f, FoundSameBoot
	case f.Pending:
		f.Pending, f.SeenBoot = false, boot
		return f, FoundControlled
	}
	f.Resets++
	f = File{SeenBoot: boot, Resets: f.Resets, Kind: KindUnexpected, Reason: reason, WallMs: wallMs, Boot: f.SeenBoot}
	return f, FoundUnexpected
}

// Controlled is f with a controlled reset recorded, asked for in boot.
func Controlled(f File, boot, agent string, pid int64, failure string, wallMs int64) File {
	return File{SeenBoot: boot, Resets: f.Resets + 1, Pending: true, Kind: KindControlled, Reason: ReasonEscalation,
		Agent: agent, Pid: pid, Failure: failure, WallMs: wallMs, Boot: boot}
}

// Describe is the reset in words, for the log and `varta-watch
// reset-reason`: one line of key=value fields.
func (f *File) Describe() string {
	if f.Kind == "" {
		return "resets=" + strconv.FormatUint(f.Resets, 10) + " none on record"
	}
	s := "resets=" + strconv.FormatUint(f.Resets, 10) + " kind=" + f.Kind + " reason=" + f.Reason
	if f.Agent != "" {
		s += " agent=" + strconv.Quote(f.Agent) + " pid=" + strconv.FormatInt(f.Pid, 10)
	}
	if f.Failure != "" {
		s += " failure=" + f.Failure
	}
	s += " wall_ms=" + strconv.FormatInt(f.WallMs, 10) + " boot=" + f.Boot
	if f.Pending {
		s += " pending=true"
	}
	return s
}
