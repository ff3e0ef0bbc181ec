package vlp_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/varta-go/varta/vlp"
)

// listen stands in for varta-watch in these examples: a Unix datagram
// socket bound at a fresh path. It returns the socket and the path to Dial.
func listen() (*net.UnixConn, string, func()) {
	dir, err := os.MkdirTemp("", "vlp-example")
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "varta.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		log.Fatal(err)
	}
	return conn, path, func() { conn.Close(); os.RemoveAll(dir) }
}

// receive reads one datagram, as the observer would, and decodes it.
func receive(conn *net.UnixConn) vlp.Frame {
	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		log.Fatal(err)
	}
	f, err := vlp.Decode(buf[:n])
	if err != nil {
		log.Fatal(err)
	}
	return f
}

// An agent dials the observer's socket once and then beats from its main
// loop, more often than the observer's --threshold-ms. Here the example
// plays the observer too, and decodes what arrived.
func ExampleDial() {
	observer, path, cleanup := listen()
	defer cleanup()

	e, err := vlp.Dial(path) // at start-up; an absent observer is not an error
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	// In the agent's loop: report health and an application value.
	if err := e.Beat(vlp.Ok, 42); err != nil && !vlp.IsDrop(err) {
		log.Fatal(err)
	}
	if err := e.Beat(vlp.Degraded, 43); err != nil && !vlp.IsDrop(err) {
		log.Fatal(err)
	}

	for range 2 {
		f := receive(observer)
		fmt.Println(f.Status, f.Nonce, f.Payload, f.Pid == uint32(os.Getpid()))
	}
	// Output:
	// ok 1 42 true
	// degraded 2 43 true
}

// A beat that cannot be delivered (no observer yet, or its queue is full)
// is a drop: the agent carries on and the next beat tries again, finding
// an observer that started or restarted in the meantime.
func ExampleEmitter_Beat() {
	dir, err := os.MkdirTemp("", "vlp-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	e, err := vlp.Dial(filepath.Join(dir, "no-observer-yet.sock"))
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	err = e.Beat(vlp.Ok, 0)
	fmt.Println(vlp.IsDrop(err), errors.Is(err, vlp.ErrNoObserver), e.Dropped())
	// Output:
	// true true 1
}

// Terminal sends the dying gasp, for example from a deferred recover in
// main: a Critical frame with the reserved terminal nonce, which the
// observer accepts without it advancing the regular nonce.
func ExampleEmitter_Terminal() {
	observer, path, cleanup := listen()
	defer cleanup()

	e, err := vlp.Dial(path)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	e.Beat(vlp.Ok, 0)
	e.Terminal(7) // payload: say, an exit reason of the application's own
	e.Beat(vlp.Ok, 0)

	for range 3 {
		f := receive(observer)
		fmt.Println(f.Status, f.Terminal(), f.Nonce == vlp.NonceTerminal, f.Payload)
	}
	// Output:
	// ok false false 0
	// critical true true 7
	// ok false false 0
}

// Append encodes a frame, checksum included, without allocating when the
// buffer has room: the frame of vlp/PROTOCOL.md §1.
func ExampleAppend() {
	f := vlp.Frame{Status: vlp.Ok, Pid: 2, Timestamp: 0, Nonce: 1, Payload: 0}
	b := vlp.Append(make([]byte, 0, vlp.Size), f)
	fmt.Println(len(b), hex.EncodeToString(b))
	// Output:
	// 32 56410200020000000000000000000000010000000000000000000000e4116baa
}

// Decode checks a datagram in the normative order and reports the first
// failure; errors.Is tells the kinds apart, and a bad checksum carries
// both values.
func ExampleDecode() {
	wire, _ := hex.DecodeString("56410200020000000000000000000000010000000000000000000000e4116baa")

	f, err := vlp.Decode(wire)
	fmt.Println(f.Status, f.Pid, f.Nonce, err)

	wire[24] = 1 // change the payload without fixing the checksum
	_, err = vlp.Decode(wire)
	var crc *vlp.CrcError
	fmt.Println(errors.Is(err, vlp.ErrBadCrc), errors.As(err, &crc), vlp.ErrBadCrc.Name(), vlp.ErrBadCrc.Label())

	_, err = vlp.Decode(wire[:31])
	fmt.Println(errors.Is(err, vlp.ErrLength))
	// Output:
	// ok 2 1 <nil>
	// true true BadCrc bad_crc
	// true
}

// An agent on another host beats over secure UDP: frames are sealed with
// a shared key (vlp/PROTOCOL.md §6). The observer's side is an Opener
// holding the same key; here it reads from a UDP socket of the example's
// own.
func ExampleDialUDP() {
	// Real keys come from a file: key, err := vlp.ReadKey("/etc/varta/udp.key").
	var key vlp.Key
	copy(key[:], "example key only, never use it!!")

	observer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer observer.Close()
	opener, err := vlp.NewOpener(vlp.OpenerConfig{Keys: []vlp.Key{key}})
	if err != nil {
		log.Fatal(err)
	}

	e, err := vlp.DialUDP(observer.LocalAddr().String(), vlp.UDPOptions{SharedKey: &key})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	if err := e.Beat(vlp.Ok, 5); err != nil && !vlp.IsDrop(err) {
		log.Fatal(err)
	}

	buf := make([]byte, 128)
	observer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := observer.Read(buf)
	if err != nil {
		log.Fatal(err)
	}
	f, h, kind := opener.Open(buf[:n])
	fmt.Println(n, kind == 0, f.Status, f.Nonce, f.Payload, h.Counter)
	// Output:
	// 60 true ok 1 5 0
}
