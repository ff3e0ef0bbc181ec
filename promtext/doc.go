// Package promtext renders the Prometheus text exposition format 0.0.4 and
// answers the HTTP/1.x requests that fetch it, without the net, net/http,
// fmt or reflect packages.
//
// # Encoding
//
// The Append functions (AppendFloat, AppendLabelValue, AppendHelp,
// AppendType, AppendHistogram) write one piece of the format into a
// caller-owned []byte and return the extended slice, in the style of
// strconv.Append*. An Encoder builds a whole exposition on top of them: it
// writes "# HELP" and "# TYPE" once when a family begins, so a family's
// samples are contiguous by construction, and it remembers the first misuse
// (a bad name, a repeated family, a row outside a family) for Err instead of
// failing on the hot path. A Histogram counts observations into fixed
// buckets chosen once.
//
// # HTTP
//
// Server is a fixed pool of connection slots, each a small state machine:
// the caller's poll(2) loop accepts sockets, reads and writes them, and
// tells a Conn what it read and how much it wrote; the Conn parses the
// request head, checks the bearer token, routes /metrics and /healthz, and
// keeps the response and the deadlines. The package makes no system calls:
// the loop owns every fd (Server.Accept records it only so the loop can find
// it again) and closes it when a Conn says WantClose. The doc comment of
// Server shows the calls in order.
//
// With Config.Stream the /metrics body is rendered a piece at a time, the
// next piece once the last is written, into a fixed buffer per connection,
// and sent with chunked transfer coding (to HTTP/1.0 clients, delimited by
// the connection's close): memory for a scrape is one piece, whatever the
// size of the exposition. Encoder.Continue and Resume carry a family across
// pieces; a Cursor per connection holds the renderer's place.
//
// # Allocation contract
//
// Nothing allocates once warm. An Encoder writes into the buffer given to
// Reset and grows it only while it is smaller than the largest exposition so
// far; a caller that passes the same buffer back each time renders with zero
// allocations. Histogram.Observe never allocates. NewServer allocates every
// request buffer up front; a slot's response buffer grows to the largest
// response it has sent (a streamed one: to one piece, and its cursor's
// Keys to Config.StreamKeys, on its first /metrics) and is then reused, and free slots are handed out
// most recently used first so that, with one scraper, one buffer stays warm.
//
// # Concurrency
//
// None of the types are safe for concurrent use. The observer's loop
// goroutine owns the Encoder, the Histograms, the Server and its Conns, and
// the render and alive callbacks run on that goroutine, inside Conn.Feed.
package promtext
