// Command varta-beat sends VLP heartbeats to a varta-watch observer: the
// agent side for shell scripts and smoke tests.
//
//	varta-beat (--socket PATH [--parent] | --udp HOST:PORT [--key-file F | --master-key-file F])
//	           [--status ok|degraded|critical] [--payload N]
//	           [--count N] [--interval-ms MS] [--terminal] [--send-wait-ms MS]
//
// With --parent the frames speak for varta-beat's parent process, so a
// shell-script daemon that runs varta-beat in its loop is tracked as one
// agent (see vlp.DialParent and varta-watch --allow-parent-beats).
//
// Exit status: 0 when every frame was sent, 1 when one could not be (no
// observer at PATH, queue full, an unusable key file, ...), 2 on a usage
// error.
package main

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/varta-go/varta/cmd/internal/cli"
	"github.com/varta-go/varta/vlp"
)

const usage = `usage: varta-beat --socket PATH [--parent] [flags]
       varta-beat --udp HOST:PORT [--key-file F | --master-key-file F] [flags]

Send VLP heartbeat frames to a varta-watch observer: over its Unix datagram
socket at PATH, or over UDP (plain, or sealed with ChaCha20-Poly1305).

  --socket PATH        the observer's Unix datagram socket
  --parent             beat for our parent process (the shell script that
                       runs us in its loop), not for ourselves; the
                       observer needs --allow-parent-beats
  --udp HOST:PORT      the observer's UDP listener; HOST is an IP literal:
                       192.0.2.7:9700 or [2001:db8::7]:9700
  --key-file F         seal frames with the shared key in F (60-byte frames)
  --master-key-file F  seal frames with the key derived from the master key
                       in F for our pid (64-byte frames)
                       Key files: 64 hex characters, mode 0600, our uid.
  --status S           ok, degraded or critical (default ok)
  --payload N          opaque 32-bit application value (default 0)
  --count N            frames to send (default 1)
  --interval-ms MS     pause between frames (default 1000 when --count > 1)
  --terminal           send the dying-gasp frame (critical, terminal nonce)
                       after the beats
  --send-wait-ms MS    when the observer's queue is full, wait up to MS for
                       room before dropping a frame, 0..10000 (default 20);
                       a flood of other senders cannot then crowd us out
  -h, --help           show this help

Exit status: 0 sent, 1 could not send (no observer, queue full, unusable
key file), 2 usage error.
`

type options struct {
	socket   string
	udp      string
	keyFile  string
	master   bool // keyFile holds a master key
	status   vlp.Status
	payload  uint32
	count    int
	interval time.Duration
	sendWait time.Duration
	terminal bool
	parent   bool // frames speak for getppid()
}

// errUsage marks errors that exit 2; err, when set, is the cause (a
// *cli.Error from the parser), reachable with errors.Is/As.
type errUsage struct {
	msg string
	err error
}

func (e errUsage) Error() string { return e.msg }
func (e errUsage) Unwrap() error { return e.err }

// flagError is a file a flag names that could not be used (a key file):
// it names the flag and keeps the cause (a *vlp.KeyFileError).
type flagError struct {
	flag string
	err  error
}

func (e *flagError) Error() string { return "--" + e.flag + ": " + e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

// sendError is frames that could not be sent: how many, where, and why
// (the last failure, kept for errors.Is, e.g. vlp.ErrNoObserver).
type sendError struct {
	dropped uint64
	total   int
	to      string
	why     string // the failure explained for the flags given
	err     error
}

func (e *sendError) Error() string {
	return strconv.FormatUint(e.dropped, 10) + " of " + strconv.Itoa(e.total) + " frames not sent to " + e.to + ": " + e.why
}
func (e *sendError) Unwrap() error { return e.err }

func parse(args []string) (options, error) {
	fs := cli.NewFlagSet()
	var o options
	status := fs.String("status", "ok", "")
	payload := fs.Uint64("payload", 0, "")
	intervalMs := fs.Int64("interval-ms", -1, "")
	sendWaitMs := fs.Int64("send-wait-ms", vlp.DefaultSendWait.Milliseconds(), "")
	fs.StringVar(&o.socket, "socket", "", "")
	fs.StringVar(&o.udp, "udp", "", "")
	keyFile := fs.String("key-file", "", "")
	masterFile := fs.String("master-key-file", "", "")
	fs.IntVar(&o.count, "count", 1, "")
	fs.BoolVar(&o.terminal, "terminal", false, "")
	fs.BoolVar(&o.parent, "parent", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			return o, err
		}
		return o, errUsage{err.Error(), err}
	}
	st, ok := vlp.ParseStatus(*status)
	switch {
	case fs.NArg() > 0:
		return o, errUsage{msg: "unexpected argument " + strconv.Quote(fs.Arg(0))}
	case o.socket == "" && o.udp == "":
		return o, errUsage{msg: "--socket PATH or --udp HOST:PORT is required"}
	case len(o.socket) > 107:
		return o, errUsage{msg: "--socket: path is longer than the 107 bytes a Unix socket address holds"}
	case o.socket != "" && o.udp != "":
		return o, errUsage{msg: "--socket and --udp are exclusive: one observer, one transport"}
	case *keyFile != "" && *masterFile != "":
		return o, errUsage{msg: "--key-file and --master-key-file are exclusive"}
	case o.parent && o.udp != "":
		return o, errUsage{msg: "--parent needs --socket: only the kernel can vouch for a parent, and only over a Unix socket"}
	case o.udp == "" && (*keyFile != "" || *masterFile != ""):
		return o, errUsage{msg: "--key-file and --master-key-file seal UDP frames; they need --udp"}
	case o.udp != "" && !validUDP(o.udp):
		return o, errUsage{msg: "--udp must be IPv4:PORT or [IPv6]:PORT with an IP literal and a non-zero port, not " + strconv.Quote(o.udp)}
	case !ok:
		return o, errUsage{msg: "--status must be ok, degraded or critical, not " + strconv.Quote(*status)}
	case *payload > 0xFFFFFFFF:
		return o, errUsage{msg: "--payload must fit in 32 bits (0..4294967295)"}
	case o.count < 0 || (o.count == 0 && !o.terminal):
		return o, errUsage{msg: "--count must be at least 1 (or 0 with --terminal)"}
	case *intervalMs < -1:
		return o, errUsage{msg: "--interval-ms must not be negative"}
	case *sendWaitMs < 0 || *sendWaitMs > vlp.MaxSendWait.Milliseconds():
		return o, errUsage{msg: "--send-wait-ms must be 0.." + strconv.FormatInt(vlp.MaxSendWait.Milliseconds(), 10)}
	}
	o.sendWait = time.Duration(*sendWaitMs) * time.Millisecond
	o.status, o.payload = st, uint32(*payload)
	o.keyFile, o.master = *keyFile, *masterFile != ""
	if o.master {
		o.keyFile = *masterFile
	}
	o.interval = time.Duration(*intervalMs) * time.Millisecond
	if *intervalMs == -1 {
		o.interval = time.Second
	}
	return o, nil
}

func validUDP(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && ap.Port() != 0
}

// dial opens the emitter the flags ask for, reading the key file if any.
func dial(o options) (*vlp.Emitter, error) {
	if o.parent {
		return vlp.DialParent(o.socket)
	}
	if o.udp == "" {
		return vlp.Dial(o.socket)
	}
	var opts vlp.UDPOptions
	if o.keyFile != "" {
		k, err := vlp.ReadKey(o.keyFile)
		if err != nil {
			flag := "key-file"
			if o.master {
				flag = "master-key-file"
			}
			return nil, &flagError{flag, err}
		}
		if o.master {
			opts.MasterKey = &k
		} else {
			opts.SharedKey = &k
		}
	}
	return vlp.DialUDP(o.udp, opts)
}

// parentWait bounds the wait for the observer to dequeue our last frame;
// parentLinger covers the time it takes from dequeuing to reading /proc.
const (
	parentWait   = 2 * time.Second
	parentLinger = 20 * time.Millisecond
)

// run sends the frames; it keeps going after a drop so a long --count run
// still beats once the observer is back, and reports how many failed.
func run(o options) error {
	e, err := dial(o)
	if err != nil {
		return err
	}
	defer e.Close()
	e.SetSendWait(o.sendWait)
	var last error
	for i := 0; i < o.count; i++ {
		if i > 0 {
			time.Sleep(o.interval)
		}
		if err := e.Beat(o.status, o.payload); err != nil {
			last = err
			if errors.Is(err, vlp.ErrParentGone) {
				return err
			}
		}
	}
	if o.terminal {
		if err := e.Terminal(o.payload); err != nil {
			last = err
		}
	}
	if o.parent {
		// The observer reads our parent from /proc after it dequeues the
		// frame; exiting (and being reaped) first would get it refused.
		e.WaitDelivered(parentWait)
		time.Sleep(parentLinger)
	}
	if last != nil {
		total := o.count
		if o.terminal {
			total++
		}
		return &sendError{dropped: e.Dropped(), total: total, to: o.socket + o.udp, why: sendFailure(o, last), err: last}
	}
	return nil
}

// sendFailure says why the frames did not arrive and what to check; the
// vlp text serves both transports and every caller, this one the flags.
func sendFailure(o options, err error) string {
	switch {
	case errors.Is(err, vlp.ErrNoObserver) && o.udp != "":
		return "no observer listening there (the port refused a datagram; is varta-watch running with --udp-addr on that address?)"
	case errors.Is(err, vlp.ErrNoObserver):
		return "no observer listening there (is varta-watch running with --socket " + o.socket + "? check the path)"
	case errors.Is(err, syscall.EPROTOTYPE):
		return "not a datagram socket, so not a varta-watch observer's (check the path)"
	}
	return err.Error()
}

func main() {
	o, err := parse(os.Args[1:])
	if errors.Is(err, cli.ErrHelp) {
		io.WriteString(os.Stdout, usage)
		return
	}
	if err != nil {
		io.WriteString(os.Stderr, "varta-beat: "+err.Error()+"; see --help\n")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		io.WriteString(os.Stderr, "varta-beat: "+err.Error()+"\n")
		os.Exit(1)
	}
}
