/*
 * varta.h - a VLP heartbeat client for C programs (vlp/PROTOCOL.md).
 *
 * One C99 header, nothing to link: every function is `static inline`, so
 * a program just includes it (there is no implementation macro to define).
 * It never allocates (the caller owns a `struct varta`, on the stack or in
 * static storage), uses POSIX calls only, and is not a binding of the Go
 * package: it speaks the wire protocol itself, with the Go emitter's
 * semantics (vlp/emitter.go, vlp/session.go):
 *
 *   - a session's first frame carries nonce 1, each further one the
 *     previous plus one; after 2^64-2 comes 0 (PROTOCOL.md §4);
 *   - a forked child notices its new pid by itself and starts a session
 *     of its own at nonce 1 (getpid() is read before every frame);
 *   - timestamps are CLOCK_MONOTONIC ns since varta_open, never
 *     decreasing, never the reserved 2^64-1;
 *   - varta_terminal sends the dying gasp (Critical, nonce 2^64-1) with a
 *     timestamp above every earlier one, and leaves the nonce alone;
 *   - when the observer restarted (its socket is gone or re-created) the
 *     next frame connects again by itself;
 *   - the socket is non-blocking: when the observer's queue is full the
 *     frame waits in poll(2) for POLLOUT at most the send wait (20 ms by
 *     default, varta_set_send_wait) and is dropped after that. This is
 *     the flood protection: poll wakes as soon as the observer reads, so
 *     a flood of other senders cannot silence this agent. No call blocks
 *     longer than the send wait.
 *
 * Errors are negative errno values; 0 is success. Two are drops, after
 * which the agent simply beats again later (varta_is_drop):
 *   -EAGAIN        the queue was still full after the send wait;
 *   -ECONNREFUSED  no observer is listening (socket missing or dead).
 * -EINVAL is a bad argument, -EBADF a closed handle; anything else is the
 * failing system call's errno, negated.
 *
 * Compile with any C99 compiler. With -std=c99 the POSIX declarations
 * need _POSIX_C_SOURCE: this header defines it (200809L) unless set, which
 * only works when it is included before any system header, so include it
 * first or define _POSIX_C_SOURCE yourself.
 *
 * One `struct varta` belongs to one thread at a time. varta_beat and
 * varta_terminal call only async-signal-safe functions (getpid,
 * clock_gettime, send, connect, poll), so a fatal-signal handler may send
 * the dying gasp, provided it did not interrupt a call on the same struct.
 */
#ifndef VARTA_H
#define VARTA_H

#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Wire constants (PROTOCOL.md §1). */
#define VARTA_FRAME_SIZE 32
#define VARTA_VERSION 0x02
#define VARTA_NONCE_TERMINAL UINT64_MAX
#define VARTA_TIMESTAMP_MAX UINT64_MAX

/* The statuses an agent may send; 3 (stall) is the observer's own. */
#define VARTA_OK 0
#define VARTA_DEGRADED 1
#define VARTA_CRITICAL 2

/* The send wait: 20 ms unless set, at most 10 s (as vlp.DefaultSendWait,
 * vlp.MaxSendWait). */
#define VARTA_DEFAULT_SEND_WAIT_MS 20
#define VARTA_MAX_SEND_WAIT_MS 10000

/* varta_decode's results, in the normative order of PROTOCOL.md §2 and
 * numbered as the Go package's vlp.Error. */
#define VARTA_DECODE_OK 0
#define VARTA_ERR_LENGTH 1
#define VARTA_ERR_BAD_MAGIC 2
#define VARTA_ERR_BAD_VERSION 3
#define VARTA_ERR_BAD_CRC 4
#define VARTA_ERR_BAD_STATUS 5
#define VARTA_ERR_STALL_ON_WIRE 6
#define VARTA_ERR_BAD_PID 7
#define VARTA_ERR_BAD_TIMESTAMP 8
#define VARTA_ERR_BAD_NONCE 9

/* One frame's fields. */
struct varta_frame {
	uint8_t status;
	uint32_t pid;
	uint64_t timestamp; /* sender-local monotonic ns */
	uint64_t nonce;     /* session counter; VARTA_NONCE_TERMINAL: dying gasp */
	uint32_t payload;   /* the application's; the protocol never looks at it */
};

/* The emitter. Fill it with varta_open; read `dropped` and `waited` any
 * time, leave the rest to the functions below. */
struct varta {
	int fd;                  /* the socket, -1 when closed */
	int connected;           /* the last connect(2) succeeded */
	struct sockaddr_un addr; /* the observer's socket */
	socklen_t addrlen;
	uint32_t pid;            /* whose session this is; 0: none yet */
	uint64_t nonce;          /* last regular nonce sent in the session */
	uint64_t start_ns;       /* the session clock's origin (CLOCK_MONOTONIC) */
	uint64_t last_ts;        /* timestamps never go backwards */
	uint64_t last_term;      /* timestamp of the last terminal frame */
	int sent_term;
	unsigned wait_ms;        /* the send wait */
	uint64_t dropped;        /* frames not delivered (drops and errors) */
	uint64_t waited;         /* frames that found the queue full and waited */
	unsigned char buf[VARTA_FRAME_SIZE];
};

/* ---- encoding (PROTOCOL.md §1, §3) ---- */

/* varta_crc32c is CRC-32C (Castagnoli: reflected polynomial 0x82F63B78,
 * init and final XOR 0xFFFFFFFF). Bit by bit: 28 bytes a beat do not need
 * a table. */
static inline uint32_t varta_crc32c(const unsigned char *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;
	size_t i;
	int k;
	for (i = 0; i < n; i++) {
		crc ^= p[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return crc ^ 0xFFFFFFFFu;
}

static inline void varta_put32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
	b[2] = (unsigned char)(v >> 16);
	b[3] = (unsigned char)(v >> 24);
}

static inline void varta_put64(unsigned char *b, uint64_t v)
{
	varta_put32(b, (uint32_t)v);
	varta_put32(b + 4, (uint32_t)(v >> 32));
}

static inline uint32_t varta_get32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t varta_get64(const unsigned char *b)
{
	return (uint64_t)varta_get32(b) | (uint64_t)varta_get32(b + 4) << 32;
}

/* varta_encode writes f into out, checksum included. Like vlp.Encode it
 * validates nothing: keeping reserved values off the wire is the sender's
 * job, which varta_beat and varta_terminal do. Little-endian by shifts, so
 * the host's byte order does not matter. */
static inline void varta_encode(unsigned char out[VARTA_FRAME_SIZE], const struct varta_frame *f)
{
	out[0] = 0x56; /* 'V' */
	out[1] = 0x41; /* 'A' */
	out[2] = VARTA_VERSION;
	out[3] = f->status;
	varta_put32(out + 4, f->pid);
	varta_put64(out + 8, f->timestamp);
	varta_put64(out + 16, f->nonce);
	varta_put32(out + 24, f->payload);
	varta_put32(out + 28, varta_crc32c(out, 28));
}

/* varta_decode checks b (n bytes) against PROTOCOL.md §2 and fills f: it
 * returns VARTA_DECODE_OK or the first failure (VARTA_ERR_*), leaving f
 * zeroed then. An agent never needs it; it is here for tools and tests. */
static inline int varta_decode(const unsigned char *b, size_t n, struct varta_frame *f)
{
	struct varta_frame g;
	memset(f, 0, sizeof *f);
	if (n != VARTA_FRAME_SIZE)
		return VARTA_ERR_LENGTH;
	if (b[0] != 0x56 || b[1] != 0x41)
		return VARTA_ERR_BAD_MAGIC;
	if (b[2] != VARTA_VERSION)
		return VARTA_ERR_BAD_VERSION;
	if (varta_get32(b + 28) != varta_crc32c(b, 28))
		return VARTA_ERR_BAD_CRC;
	g.status = b[3];
	g.pid = varta_get32(b + 4);
	g.timestamp = varta_get64(b + 8);
	g.nonce = varta_get64(b + 16);
	g.payload = varta_get32(b + 24);
	if (g.status > 3)
		return VARTA_ERR_BAD_STATUS;
	if (g.status == 3)
		return VARTA_ERR_STALL_ON_WIRE;
	if (g.pid < 2)
		return VARTA_ERR_BAD_PID;
	if (g.timestamp == VARTA_TIMESTAMP_MAX)
		return VARTA_ERR_BAD_TIMESTAMP;
	if (g.nonce == VARTA_NONCE_TERMINAL && g.status != VARTA_CRITICAL)
		return VARTA_ERR_BAD_NONCE;
	*f = g;
	return VARTA_DECODE_OK;
}

/* varta_decode_error_name spells a varta_decode result as the spec and the
 * event file do ("BadMagic", ...); "" for success. */
static inline const char *varta_decode_error_name(int e)
{
	static const char *const names[] = {"", "Length", "BadMagic", "BadVersion", "BadCrc",
		"BadStatus", "StallOnWire", "BadPid", "BadTimestamp", "BadNonce"};
	if (e < 0 || e >= (int)(sizeof names / sizeof names[0]))
		return "Unknown";
	return names[e];
}

/* ---- the emitter ---- */

/* varta_monotonic_ns is CLOCK_MONOTONIC in ns (0 if the clock fails,
 * which POSIX systems with the monotonic clock do not do). */
static inline uint64_t varta_monotonic_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int varta_connect(struct varta *v)
{
	int rc;
	do
		rc = connect(v->fd, (const struct sockaddr *)&v->addr, v->addrlen);
	while (rc != 0 && errno == EINTR);
	v->connected = rc == 0;
	return rc == 0 ? 0 : -errno;
}

/* varta_open prepares v to beat to the observer's Unix datagram socket at
 * path (1 to 107 bytes). A missing observer is no error: agents may start
 * first, and varta_beat reports -ECONNREFUSED until one appears. */
static inline int varta_open(struct varta *v, const char *path)
{
	size_t n;
	int fd, fl;
	if (v == NULL || path == NULL)
		return -EINVAL;
	memset(v, 0, sizeof *v);
	v->fd = -1;
	n = strlen(path);
	if (n == 0 || n >= sizeof v->addr.sun_path)
		return -EINVAL;
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
#else
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		fl = -errno;
		close(fd);
		return fl;
	}
#endif
	(void)fl;
	v->fd = fd;
	v->addr.sun_family = AF_UNIX;
	memcpy(v->addr.sun_path, path, n + 1);
	v->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	v->wait_ms = VARTA_DEFAULT_SEND_WAIT_MS;
	v->start_ns = varta_monotonic_ns();
	(void)varta_connect(v); /* a failure here is retried by every frame */
	return 0;
}

/* varta_set_send_wait sets how long a frame waits, at most, for room in a
 * full queue: 0 drops at once and never blocks; above VARTA_MAX_SEND_WAIT_MS
 * it is cut to that. Keep it well under the beat interval. */
static inline void varta_set_send_wait(struct varta *v, unsigned ms)
{
	v->wait_ms = ms > VARTA_MAX_SEND_WAIT_MS ? VARTA_MAX_SEND_WAIT_MS : ms;
}

/* varta_close releases the socket; safe to call twice. In a forked child
 * it closes the child's copy only. */
static inline int varta_close(struct varta *v)
{
	int rc = 0;
	if (v != NULL && v->fd >= 0) {
		rc = close(v->fd) == 0 ? 0 : -errno;
		v->fd = -1;
	}
	return rc;
}

/* varta_is_drop reports whether rc is a drop: the frame was lost for a
 * reason that must not stop the agent. */
static inline int varta_is_drop(int rc)
{
	return rc == -EAGAIN || rc == -ECONNREFUSED;
}

/* varta_session reads the pid afresh: a forked child has a new pid and
 * starts a session of its own at nonce 1 (PROTOCOL.md §4). */
static inline void varta_session(struct varta *v)
{
	uint32_t pid = (uint32_t)getpid();
	if (pid != v->pid) {
		v->pid = pid;
		v->nonce = 0;
		v->sent_term = 0;
		v->last_term = 0;
	}
}

/* varta_now is the session clock: ns since varta_open, never decreasing
 * and never the reserved maximum. */
static inline uint64_t varta_now(struct varta *v)
{
	uint64_t ts = varta_monotonic_ns() - v->start_ns;
	if (ts < v->last_ts)
		ts = v->last_ts;
	if (ts == VARTA_TIMESTAMP_MAX)
		ts--;
	v->last_ts = ts;
	return ts;
}

/* varta_write is one send(2), EINTR retried. MSG_NOSIGNAL: a dead peer is
 * an error to handle, never a SIGPIPE. */
static inline int varta_write(struct varta *v)
{
	ssize_t m;
#ifdef MSG_NOSIGNAL
	const int flags = MSG_NOSIGNAL;
#else
	const int flags = 0;
#endif
	if (!v->connected)
		return -ENOTCONN;
	do
		m = send(v->fd, v->buf, VARTA_FRAME_SIZE, flags);
	while (m < 0 && errno == EINTR);
	if (m < 0)
		return -errno;
	return m == VARTA_FRAME_SIZE ? 0 : -EMSGSIZE;
}

/* varta_reconnectable: the observer's socket went away (it stopped or
 * restarted) or we were never connected; connecting again finds the new
 * one. As vlp.Peer.Send does. */
static inline int varta_reconnectable(int rc)
{
	return rc == -ECONNREFUSED || rc == -ENOTCONN || rc == -EDESTADDRREQ ||
	       rc == -ENOENT || rc == -EPIPE;
}

/* varta_send_once writes the frame in buf, connecting again and retrying
 * once when the observer is gone. */
static inline int varta_send_once(struct varta *v)
{
	int rc = varta_write(v);
	if (rc != 0 && varta_reconnectable(rc)) {
		rc = varta_connect(v);
		if (rc == 0)
			rc = varta_write(v);
	}
	return rc;
}

/* varta_wait_send retries a frame the full queue refused, waiting in poll
 * for POLLOUT until the send wait has passed. POLLOUT on a connected Unix
 * datagram socket means the observer's queue has room; every waiting
 * sender is woken when the observer reads, so another may take the room
 * first: then it waits again, within the same deadline. poll counts whole
 * milliseconds and is given the remainder rounded down, so the wait never
 * runs past the deadline (it may end up to 1 ms early). */
static inline int varta_wait_send(struct varta *v)
{
	uint64_t deadline = varta_monotonic_ns() + (uint64_t)v->wait_ms * 1000000u;
	struct pollfd pfd;
	int rc = -EAGAIN;
	v->waited++;
	for (;;) {
		uint64_t now = varta_monotonic_ns();
		int ms;
		if (now >= deadline)
			return rc;
		ms = (int)((deadline - now) / 1000000u);
		if (ms == 0)
			return rc;
		pfd.fd = v->fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
			return -errno;
		rc = varta_send_once(v);
		if (rc != -EAGAIN && rc != -EWOULDBLOCK)
			return rc;
		rc = -EAGAIN;
	}
}

/* varta_send encodes f, sends it, and maps the outcome to the drops. */
static inline int varta_send(struct varta *v, const struct varta_frame *f)
{
	int rc;
	varta_encode(v->buf, f);
	rc = varta_send_once(v);
	if ((rc == -EAGAIN || rc == -EWOULDBLOCK) && v->wait_ms > 0)
		rc = varta_wait_send(v);
	if (rc == 0)
		return 0;
	v->dropped++;
	if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -ENOBUFS)
		return -EAGAIN;
	if (varta_reconnectable(rc))
		return -ECONNREFUSED;
	return rc;
}

/* varta_beat sends one regular frame: status VARTA_OK, VARTA_DEGRADED or
 * VARTA_CRITICAL (-EINVAL otherwise) and the application's payload. It
 * blocks at most the send wait, and only when the observer's queue is
 * full; an absent observer is never waited for. */
static inline int varta_beat(struct varta *v, unsigned status, uint32_t payload)
{
	struct varta_frame f;
	if (v == NULL || status > VARTA_CRITICAL)
		return -EINVAL;
	if (v->fd < 0)
		return -EBADF;
	varta_session(v);
	f.timestamp = varta_now(v);
	v->nonce++;
	if (v->nonce == VARTA_NONCE_TERMINAL) /* 2^64-2 is followed by 0 */
		v->nonce = 0;
	f.status = (uint8_t)status;
	f.pid = v->pid;
	f.nonce = v->nonce;
	f.payload = payload;
	return varta_send(v, &f);
}

/* varta_terminal sends the dying gasp: Critical with the terminal nonce.
 * Its timestamp is above every earlier terminal frame's, so the observer
 * accepts a repeat; the regular nonce does not move. */
static inline int varta_terminal(struct varta *v, uint32_t payload)
{
	struct varta_frame f;
	uint64_t ts;
	if (v == NULL)
		return -EINVAL;
	if (v->fd < 0)
		return -EBADF;
	varta_session(v);
	ts = varta_now(v);
	if (v->sent_term && ts <= v->last_term)
		ts = v->last_term + 1;
	v->sent_term = 1;
	v->last_term = ts;
	f.status = VARTA_CRITICAL;
	f.pid = v->pid;
	f.timestamp = ts;
	f.nonce = VARTA_NONCE_TERMINAL;
	f.payload = payload;
	return varta_send(v, &f);
}

#endif /* VARTA_H */
