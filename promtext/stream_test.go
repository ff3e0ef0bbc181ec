package promtext

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// pidStream is a Config.Stream over rows: renderPids's four families, a
// piece at a time, resuming where the last piece stopped.
func pidStream(rows []pidRow) func(*Encoder, *Cursor) bool {
	fams := [...]struct {
		name, help string
		typ        Type
	}{
		{"varta_beats_total", "Beats accepted, per pid.", TypeCounter},
		{"varta_stalls_total", "Stalls raised, per pid.", TypeCounter},
		{"varta_status", "Last status: 0 ok, 1 degraded, 2 critical, 3 stall.", TypeGauge},
		{"varta_last_beat_age_seconds", "Seconds since the last accepted beat.", TypeGauge},
	}
	return func(e *Encoder, c *Cursor) bool {
		for ; c.Part < len(fams); c.Part, c.Row = c.Part+1, 0 {
			f := fams[c.Part]
			if c.Row == 0 {
				if len(e.Bytes()) > 0 && e.Room() < 256 {
					return false
				}
				e.Family(f.name, f.help, f.typ)
			} else {
				e.Resume(f.name, f.typ)
			}
			for ; c.Row < len(rows); c.Row++ {
				if e.Room() < 128 && c.Row > 0 && len(e.Bytes()) > 0 {
					return false
				}
				r := &rows[c.Row]
				e.LabelUint("pid", r.pid)
				switch c.Part {
				case 0:
					e.Uint(r.beats)
				case 1:
					e.Uint(r.stalls)
				case 2:
					e.Uint(r.status)
				case 3:
					e.Float(r.age)
				}
			}
		}
		return true
	}
}

// readHTTP parses raw as the response to a request of method with Go's
// own HTTP client code, which undoes the chunked coding and checks it.
func readHTTP(t *testing.T, raw, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("ReadResponse: %v\n%.300q", err, raw)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v (raw tail %q)", err, raw[max(0, len(raw)-40):])
	}
	return resp, string(body)
}

// TestStreamChunked: a streamed body arrives whole and in order, framed
// as HTTP/1.1 chunks (one per piece, then the last chunk), equal to the
// exposition rendered in one buffer; the slot's buffer holds one piece,
// never the body.
func TestStreamChunked(t *testing.T) {
	rows := makePidRows(4096)
	var e Encoder
	want := string(renderPids(&e, nil, rows))
	const chunk = 4 << 10
	s := newServer(t, Config{Stream: pidStream(rows), StreamChunk: chunk})
	st, raw := drain(t, s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := readHTTP(t, raw, "GET")
	if st != 200 || resp.StatusCode != 200 {
		t.Fatalf("status %d / %d, want 200", st, resp.StatusCode)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || resp.ContentLength != -1 {
		t.Errorf("Transfer-Encoding %v, Content-Length %d; want chunked and none", resp.TransferEncoding, resp.ContentLength)
	}
	if resp.Header.Get("Content-Type") != ContentType || !resp.Close {
		t.Errorf("Content-Type %q, close %v", resp.Header.Get("Content-Type"), resp.Close)
	}
	if body != want {
		t.Fatalf("streamed body (%d bytes) differs from the whole exposition (%d bytes)", len(body), len(want))
	}
	if pieces := strings.Count(raw, "\r\n") - 5; pieces < len(want)/chunk*2 {
		t.Errorf("%d chunk lines for a %d-byte body in %d-byte pieces: not streamed", pieces, len(want), chunk)
	}
	if got, limit := len(s.Conn(0).buf), headerRoom+chunk+trailerRoom; got > limit {
		t.Errorf("the slot's buffer grew to %d bytes, want at most one piece (%d)", got, limit)
	}
	if e.Err() != nil {
		t.Fatal(e.Err())
	}
	var se Encoder
	var c Cursor
	if got := RenderStream(nil, &se, &c, chunk, pidStream(rows)); string(got) != want || se.Err() != nil {
		t.Errorf("RenderStream: %d bytes (misuse %v), want the %d of the whole exposition", len(got), se.Err(), len(want))
	}
}

// TestStreamHTTP10: an HTTP/1.0 client may not know chunked coding, so its
// body ends where the connection does: no Content-Length, no chunks.
func TestStreamHTTP10(t *testing.T) {
	rows := makePidRows(300)
	var e Encoder
	want := string(renderPids(&e, nil, rows))
	s := newServer(t, Config{Stream: pidStream(rows), StreamChunk: 1 << 10})
	_, raw := drain(t, s, "GET /metrics HTTP/1.0\r\n\r\n")
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	if strings.Contains(head, "Content-Length") || strings.Contains(head, "Transfer-Encoding") || !strings.Contains(head, "Connection: close") {
		t.Errorf("HTTP/1.0 header %q: want neither length nor chunks, and Connection: close", head)
	}
	if body != want {
		t.Errorf("body of %d bytes, want the exposition's %d", len(body), len(want))
	}
}

// TestStreamHead: HEAD gets the header alone and renders nothing.
func TestStreamHead(t *testing.T) {
	calls := 0
	s := newServer(t, Config{Stream: func(e *Encoder, c *Cursor) bool { calls++; return true }})
	_, raw := drain(t, s, "HEAD /metrics HTTP/1.1\r\n\r\n")
	resp, body := readHTTP(t, raw, "HEAD")
	if resp.StatusCode != 200 || body != "" || calls != 0 || !strings.HasSuffix(raw, "\r\n\r\n") {
		t.Errorf("HEAD: status %d, body %q, %d renders, raw %q", resp.StatusCode, body, calls, raw)
	}
}

// TestStreamStuckRenderer: a renderer that never finishes and writes
// nothing ends its body instead of spinning the loop forever, and the
// response is still well framed.
func TestStreamStuckRenderer(t *testing.T) {
	calls := 0
	s := newServer(t, Config{Stream: func(e *Encoder, c *Cursor) bool {
		calls++
		if c.Row == 0 {
			e.Family("m", "h", TypeGauge)
			e.Uint(1)
			c.Row = 1
		}
		return false
	}})
	_, raw := drain(t, s, "GET /metrics HTTP/1.1\r\n\r\n")
	if _, body := readHTTP(t, raw, "GET"); body != "# HELP m h\n# TYPE m gauge\nm 1\n" || calls != 3 {
		t.Errorf("body %q after %d calls, want the one row after 3 (one with it, two empty)", body, calls)
	}
}

// TestStreamOverflow: a renderer that writes past its piece's room still
// gets its rows out whole (the piece is copied into a larger buffer).
func TestStreamOverflow(t *testing.T) {
	big := strings.Repeat("x", 3000)
	s := newServer(t, Config{StreamChunk: 1 << 10, Stream: func(e *Encoder, c *Cursor) bool {
		if c.Row == 0 {
			e.Family("m", "h", TypeGauge)
		} else {
			e.Resume("m", TypeGauge)
		}
		e.Label("v", big)
		e.Uint(uint64(c.Row))
		c.Row++
		return c.Row == 3
	}})
	_, raw := drain(t, s, "GET /metrics HTTP/1.1\r\n\r\n")
	_, body := readHTTP(t, raw, "GET")
	row := `m{v="` + big + `"} `
	if !strings.HasPrefix(body, "# HELP m h\n# TYPE m gauge\n"+row+"0\n") || strings.Count(body, row) != 3 || !strings.HasSuffix(body, "2\n") {
		t.Errorf("body %.80q… (%d bytes): want the three big rows", body, len(body))
	}
}

// TestStreamConcurrent: two scrapes streamed at once, their pieces
// interleaved, each follow their own cursor.
func TestStreamConcurrent(t *testing.T) {
	rows := makePidRows(2000)
	var e Encoder
	want := string(renderPids(&e, nil, rows))
	s := newServer(t, Config{Stream: pidStream(rows), StreamChunk: 2 << 10})
	var cs [2]*Conn
	var out [2][]byte
	for i := range cs {
		cs[i], _ = s.Accept(10+i, 0)
		cs[i].Feed(metricsRequest, 1)
	}
	for cs[0].Want(2) == WantWrite || cs[1].Want(2) == WantWrite {
		for i, c := range cs {
			if c.Want(2) == WantWrite {
				p := c.Pending()
				n := min(len(p), 700) // partial writes, as a full socket buffer makes
				out[i] = append(out[i], p[:n]...)
				c.Wrote(n)
			}
		}
	}
	for i := range cs {
		if _, body := readHTTP(t, string(out[i]), "GET"); body != want {
			t.Errorf("scrape %d: %d bytes, want the exposition's %d", i, len(body), len(want))
		}
	}
}

// TestStreamNoAllocs: a streamed 4096-pid scrape allocates nothing once
// its slot's piece buffer and cursor exist.
func TestStreamNoAllocs(t *testing.T) {
	rows := makePidRows(4096)
	s := newServer(t, Config{Stream: pidStream(rows), StreamKeys: 4096})
	mustDrainQuiet(s) // warm-up: the slot's piece buffer and keys
	if got := testing.AllocsPerRun(20, func() { mustDrainQuiet(s) }); got != 0 {
		t.Errorf("a streamed 4096-pid /metrics: %v allocs per request, want 0", got)
	}
	if c := s.Conn(0); cap(c.cur.Keys) != 4096 {
		t.Errorf("cursor keys hold %d, want StreamKeys 4096", cap(c.cur.Keys))
	}
	if !bytes.Contains(s.Conn(0).buf, []byte("varta_last_beat_age_seconds{pid=")) {
		t.Error("the slot's buffer does not hold the last piece")
	}
}
