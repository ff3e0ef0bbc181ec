package scrape

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RateLimit is the per-source-IP token bucket on the metrics endpoint
// (--prom-rate-limit-per-sec, --prom-rate-limit-burst): each connection
// takes a token; a source whose bucket is empty has its connection closed
// unserved. PerSec 0 turns it off.
type RateLimit struct {
	PerSec int
	Burst  int
}

// The per-IP state lives in a fixed table: ipStates sources at once, each
// forgotten ipTTL after its last connection. It is scanned linearly (a
// handful of connections per tick against 256 entries), so no lookup can
// run out of probes; when every entry is a live source, a new source's
// connection is closed unserved (ip_table_full) rather than one that is
// being limited forgetting its debt.
const (
	ipStates = 256
	ipTTL    = int64(60 * time.Second)
)

// Reasons a connection is closed before it is served, in the order of
// DropReasons.
const (
	DropDrain       = iota // every connection slot busy (counted as drain: accepted and closed unserved)
	DropRateLimit          // the source's token bucket was empty
	DropIPTableFull        // the per-IP table was full of live sources
	NumDropReasons
)

// DropReasons are the reason label values of
// varta_prom_connections_dropped_total.
var DropReasons = [NumDropReasons]string{"drain", "rate_limit", "ip_table_full"}

type ipState struct {
	ip     [16]byte
	milli  int64 // tokens in thousandths
	refill int64 // when milli was last topped up
	used   bool
}

type ipTable struct {
	perSec, burst int64
	ents          [ipStates]ipState
}

// allow takes a token for ip at now; reason is the drop reason when it
// says no.
func (t *ipTable) allow(ip [16]byte, now int64) (ok bool, reason int) {
	free := -1
	for i := range t.ents {
		e := &t.ents[i]
		if !e.used || now-e.refill >= ipTTL && e.ip != ip {
			if free < 0 {
				free = i
			}
			continue
		}
		if e.ip != ip {
			continue
		}
		e.milli = min(t.burst*1000, e.milli+(now-e.refill)*t.perSec/int64(time.Millisecond))
		e.refill = now
		if e.milli < 1000 {
			return false, DropRateLimit
		}
		e.milli -= 1000
		return true, 0
	}
	if free < 0 {
		return false, DropIPTableFull
	}
	t.ents[free] = ipState{ip: ip, milli: t.burst*1000 - 1000, refill: now, used: true}
	return true, 0
}

// peerIP is the accepted connection's source address as 16 bytes (IPv4
// mapped into IPv6), from the sockaddr accept4 filled in.
func peerIP(sa *unix.RawSockaddrAny) (ip [16]byte) {
	switch sa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		ip[10], ip[11] = 0xff, 0xff
		copy(ip[12:], a.Addr[:])
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		ip = a.Addr
	}
	return ip
}
