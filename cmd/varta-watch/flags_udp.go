package main

import (
	"net/netip"
	"strconv"

	"github.com/varta-go/varta/poll"
	"github.com/varta-go/varta/vlp"
)

// udpSettings are the flags of the UDP listener (vlp/PROTOCOL.md §6, cmd/varta-watch/README.md
// §1). checkUDP turns them into poll.Config.UDP; loadUDP reads the keys.
type udpSettings struct {
	addr         string // --udp-addr IP:PORT
	portNum      *num   // --udp-port N, the Rust original's spelling ...
	bindAddr     string // ... with --udp-bind-addr IP
	plaintext    bool
	keyFile      string // the current shared key
	acceptedFile string // more shared keys, one per line
	masterFile   string
	recovery     bool // --udp-recovery: every kind the listener takes
	// The Rust original's per-kind spellings of the recovery opt-in.
	recoverPlain  bool
	recoverSecure bool
	// acceptOffHost is --i-accept-recovery-from-unauthenticated-network:
	// plain UDP from off the host may trigger recovery.
	acceptOffHost bool
	// secureOffHost is --i-accept-secure-udp-non-loopback: secure UDP may
	// listen on an address other hosts can reach.
	secureOffHost bool
}

const flagSecureOffHost = "i-accept-secure-udp-non-loopback"

const (
	flagRecoverPlain  = "plaintext-udp-i-accept-recovery-on-unauthenticated-transport"
	flagRecoverSecure = "secure-udp-i-accept-recovery-on-unauthenticated-transport"
)

// keyFlag names the first key flag given, or "".
func (u *udpSettings) keyFlag() string {
	switch {
	case u.keyFile != "":
		return "key-file"
	case u.acceptedFile != "":
		return "accepted-key-file"
	case u.masterFile != "":
		return "master-key-file"
	}
	return ""
}

// recoveryFlag names the first recovery opt-in given, or "".
func (u *udpSettings) recoveryFlag() string {
	switch {
	case u.recovery:
		return "udp-recovery"
	case u.recoverPlain:
		return flagRecoverPlain
	case u.recoverSecure:
		return flagRecoverSecure
	}
	return ""
}

// checkUDP validates the UDP flags and fills s.cfg.UDP (nil: no listener).
func (s *settings) checkUDP() error {
	u := &s.udp
	keyed := u.keyFlag() != ""
	addr, err := u.listenAddr()
	if err != nil {
		return err
	}
	if addr == "" {
		for _, name := range []string{u.keyFlag(), u.recoveryFlag()} {
			if name != "" {
				return bad(name, "needs a UDP listener: --udp-addr IP:PORT")
			}
		}
		for _, f := range []struct {
			set  bool
			name string
		}{{u.plaintext, "i-accept-plaintext-udp"}, {u.secureOffHost, flagSecureOffHost}} {
			if f.set {
				return bad(f.name, "needs a UDP listener: --udp-addr IP:PORT")
			}
		}
		return nil
	}
	switch {
	case !keyed && !u.plaintext:
		// A listener taking unauthenticated frames lets anyone who can
		// reach the port beat for any pid: only on explicit request.
		return bad("udp-addr", "refusing a plain UDP listener: its frames are unauthenticated, anyone who reaches "+
			"the port can beat for any pid; add --key-file, --accepted-key-file or --master-key-file for secure UDP, "+
			"or --i-accept-plaintext-udp to accept that")
	case keyed && !poll.SecureUDP:
		return bad(u.keyFlag(), "this build has no secure UDP (built with -tags varta_nosecure)")
	case u.recoveryFlag() != "" && s.recoveryExec == "" && s.recoveryFile == "":
		return bad(u.recoveryFlag(), "needs a recovery command: --recovery-exec or --recovery-exec-file")
	case u.recoverPlain && !u.plaintext:
		return bad(flagRecoverPlain, "needs --i-accept-plaintext-udp")
	case u.recoverSecure && !keyed:
		return bad(flagRecoverSecure, "needs --key-file, --accepted-key-file or --master-key-file")
	case u.secureOffHost && !keyed:
		return bad(flagSecureOffHost, "only means something for secure UDP: add --key-file, --accepted-key-file or --master-key-file")
	case keyed && !loopbackAddr(addr) && !u.secureOffHost:
		// As in the Rust original: a key holder anywhere on the network
		// could claim any local pid, and fill the replay table's 1024
		// sender slots (vlp/PROTOCOL.md §6), so new agents are refused.
		return bad(u.keyFlag(), "refusing secure UDP on "+addr+", which is reachable off this host: whoever holds "+
			"the key there can beat for any local pid and fill the replay table so that new agents are refused; "+
			"bind 127.0.0.1 or [::1], or add --"+flagSecureOffHost+" to accept that")
	case u.plaintext && (u.recovery || u.recoverPlain) && !loopbackAddr(addr) && !u.acceptOffHost:
		// One datagram from anywhere on the network, naming any local
		// pid, would run the recovery command against that process.
		return bad(u.recoveryFlag(), "refusing recovery for plain UDP frames on "+addr+", which is reachable off this "+
			"host: anyone who can send it one datagram could make the recovery command run against any local pid; "+
			"bind the listener to 127.0.0.1 or [::1], use secure UDP, or add "+
			"--i-accept-recovery-from-unauthenticated-network to accept that risk")
	case u.acceptOffHost && !(u.plaintext && (u.recovery || u.recoverPlain)):
		return bad("i-accept-recovery-from-unauthenticated-network", "only means something with recovery for plain "+
			"UDP frames (--udp-recovery or --"+flagRecoverPlain+" with --i-accept-plaintext-udp)")
	}
	s.cfg.UDP = &poll.UDPConfig{Addr: addr, Plaintext: u.plaintext,
		RecoverPlain: u.plaintext && (u.recovery || u.recoverPlain), RecoverSecure: keyed && (u.recovery || u.recoverSecure)}
	return nil
}

// listenAddr is the address from --udp-addr, or from --udp-port and
// --udp-bind-addr, or "" when no listener was asked for. --udp-port alone
// binds 127.0.0.1, plain UDP too: the Rust original binds 0.0.0.0 for
// plain UDP, which puts unauthenticated frames on every network the board
// is on because a flag was left out. Every interface only when named.
func (u *udpSettings) listenAddr() (string, error) {
	switch {
	case u.addr != "" && (u.portNum.given || u.bindAddr != ""):
		return "", bad("udp-addr", "cannot be combined with --udp-port or --udp-bind-addr; give one form")
	case u.bindAddr != "" && !u.portNum.given:
		return "", bad("udp-bind-addr", "needs --udp-port")
	case u.addr != "":
		ap, err := listenAddr("udp-addr", u.addr, "[::1]")
		if err != nil {
			return "", err
		}
		return ap.String(), nil
	case !u.portNum.given:
		return "", nil
	}
	port := u.portNum.cur
	host := u.bindAddr
	if host == "" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return "", bad("udp-bind-addr", "want an IP address such as 127.0.0.1, 0.0.0.0 or ::, got "+strconv.Quote(host))
	}
	return netip.AddrPortFrom(ip, uint16(port)).String(), nil
}

// loadUDP reads the key files: regular files we own, mode 0600 or
// stricter, not symlinks, 64 hex characters per key (vlp.ParseKeyFile).
// A bad one is a start-up failure naming the flag and the file.
func (s *settings) loadUDP() error {
	c, u := s.cfg.UDP, &s.udp
	if c == nil {
		return nil
	}
	if u.keyFile != "" {
		k, err := vlp.ReadKey(u.keyFile)
		if err != nil {
			return &loadError{"key-file", err}
		}
		c.Keys = append(c.Keys, k)
	}
	if u.acceptedFile != "" {
		keys, err := vlp.ParseKeyFile(u.acceptedFile)
		if err != nil {
			return &loadError{"accepted-key-file", err}
		}
		for _, k := range keys {
			if len(c.Keys) == 0 || k != c.Keys[0] { // the current key may be listed too
				c.Keys = append(c.Keys, k)
			}
		}
	}
	if u.masterFile != "" {
		k, err := vlp.ReadKey(u.masterFile)
		if err != nil {
			return &loadError{"master-key-file", err}
		}
		c.MasterKey = &k
	}
	return nil
}

// loopbackAddr reports whether an IP:PORT listens on a loopback address
// only (not a wildcard, not an interface).
func loopbackAddr(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
