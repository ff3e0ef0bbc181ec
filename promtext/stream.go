package promtext

import (
	"slices"
	"strconv"
)

// Cursor is where a streamed /metrics body stands between two pieces
// (Config.Stream). Each connection has its own, so concurrent scrapes do
// not disturb one another.
type Cursor struct {
	// Part and Row are the renderer's to use: by convention the section of
	// the exposition it is in and the row within it. Both are 0 at the
	// start of a body.
	Part, Row int
	// Keys is storage of Config.StreamKeys capacity, empty at the start of
	// a body, that the renderer may fill with a snapshot (the order of the
	// rows it is to write, say) so that every piece of one body follows
	// the same snapshot.
	Keys []uint64
}

// Framing of a response body other than by Content-Length, for
// appendHeader.
const (
	bodyChunked = -1 // HTTP/1.1 chunked transfer coding
	bodyToClose = -2 // the body ends where the connection does (HTTP/1.0)
)

// trailerRoom follows a piece in a connection's buffer: the CRLF that ends
// a chunk and the last chunk, "0\r\n\r\n". The chunk's size line,
// at most "ffffffff\r\n", goes in front, in headerRoom.
const trailerRoom = 2 + 5

// startStream answers a /metrics request with a streamed body: the header
// and the first piece now, the next piece each time the last is written
// (Wrote), so a connection's buffer holds one piece and never the whole
// exposition.
func (s *Server) startStream(c *Conn, r *request, now int64) {
	if n := headerRoom + s.cfg.StreamChunk + trailerRoom; len(c.buf) < n {
		c.buf = make([]byte, n)
	}
	if cap(c.cur.Keys) < s.cfg.StreamKeys {
		c.cur.Keys = make([]uint64, 0, s.cfg.StreamKeys)
	}
	c.cur = Cursor{Keys: c.cur.Keys[:0]}
	c.chunked = !r.http10
	framing := bodyChunked
	if r.http10 {
		framing = bodyToClose
	}
	hdr := appendHeader(s.hdr[:0], 200, ContentType, framing)
	c.out, c.status = c.buf[headerRoom:headerRoom], 200
	c.state, c.deadline = WantWrite, now+int64(s.cfg.WriteTimeout)
	if r.method != methodHead {
		c.streaming = true
		c.out = c.nextPiece(true)
	}
	// The header goes right in front of the first piece's framing.
	start := cap(c.buf) - cap(c.out) // where out begins in buf
	copy(c.buf[start-len(hdr):], hdr)
	c.out = c.buf[start-len(hdr) : start+len(c.out)]
}

// nextPiece renders the next piece of a streamed body into c.buf, frames
// it, and returns the bytes to write, which end at most trailerRoom bytes
// past the piece and start at most a size line before headerRoom.
func (c *Conn) nextPiece(first bool) []byte {
	s := c.srv
	var piece []byte
	for empty := 0; ; {
		dst := c.buf[headerRoom : headerRoom : headerRoom+s.cfg.StreamChunk]
		if first {
			c.enc.Reset(dst)
			first = false
		} else {
			c.enc.Continue(dst)
		}
		c.streaming = !s.cfg.Stream(&c.enc, &c.cur)
		piece = c.enc.Bytes()
		if len(piece) > 0 || !c.streaming {
			break
		}
		if empty++; empty == 2 {
			c.streaming = false // a renderer that makes no progress must not spin the loop
			break
		}
	}
	if len(piece) > 0 && &piece[0] != &c.buf[headerRoom] {
		// The renderer wrote past the piece's room and the encoder grew
		// elsewhere: take the piece in, in a buffer that fits it.
		if need := headerRoom + len(piece) + trailerRoom; need > len(c.buf) {
			c.buf = make([]byte, need)
		}
		copy(c.buf[headerRoom:], piece)
	}
	start, end := headerRoom, headerRoom+len(piece)
	if c.chunked {
		if len(piece) > 0 {
			var line [10]byte
			size := append(strconv.AppendUint(line[:0], uint64(len(piece)), 16), "\r\n"...)
			start -= copy(c.buf[start-len(size):], size)
			end += copy(c.buf[end:], "\r\n")
		}
		if !c.streaming {
			end += copy(c.buf[end:], "0\r\n\r\n")
		}
	}
	return c.buf[start:end]
}

// RenderStream runs stream over a whole body and appends it to dst, in
// pieces of chunk bytes, with e and c as the encoder and cursor: the body a
// streaming Server sends, in one buffer, for tests and tools. Err of e then
// covers the whole body. Like the Server, it ends the body when a piece is
// left empty twice in a row.
func RenderStream(dst []byte, e *Encoder, c *Cursor, chunk int, stream func(*Encoder, *Cursor) bool) []byte {
	*c = Cursor{Keys: c.Keys[:0]}
	for first, empty := true, 0; empty < 2; first = false {
		dst = slices.Grow(dst, chunk)
		piece := dst[len(dst):len(dst):min(cap(dst), len(dst)+chunk)]
		if first {
			e.Reset(piece)
		} else {
			e.Continue(piece)
		}
		done := stream(e, c)
		dst = append(dst, e.Bytes()...) // in place when the piece fitted
		if done {
			break
		}
		if len(e.Bytes()) > 0 {
			empty = 0
		} else {
			empty++
		}
	}
	return dst
}
