/*
 * The C floor of the idle-cost benchmark: the least a receiver of VLP
 * beats can do on this machine, for varta-watch and the Go baseline to be
 * measured against in the same run (bench/idle.go builds it with the
 * system C compiler).
 *
 * One thread. The socket is bound like the observer's (SOCK_DGRAM,
 * SO_PASSCRED, so the kernel attaches credentials as it does for
 * varta-watch); every datagram's CRC-32C is checked; batches come from
 * recvmmsg(2) with MSG_DONTWAIT, 64 at a time.
 *
 *   floor SOCKET            poll(2) on the socket and a timerfd: one wake
 *                           per datagram burst; the timerfd is re-armed on
 *                           every wake, as an observer moves its next stall
 *                           deadline.
 *   floor -tick MS SOCKET   poll(2) on a periodic timerfd only; the socket
 *                           is drained on every tick.
 *
 * Standard input: each line asks for "valid=N bad=N" on standard output;
 * end of input stops it. "ready" is printed once bound.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#define BATCH 64
#define FRAME 32
#define BUFSZ 64

static uint32_t crctab[256];

static void crcinit(void) {
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crctab[i] = c;
	}
}

static uint32_t crc32c(const unsigned char *p, size_t n) {
	uint32_t c = 0xFFFFFFFFu;
	while (n--)
		c = crctab[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* A frame is valid when its magic and version match and its last four
 * bytes (little-endian) are the CRC-32C of the first 28. */
static int valid(const unsigned char *b, unsigned len) {
	if (len != FRAME || b[0] != 0x56 || b[1] != 0x41 || b[2] != 0x02)
		return 0;
	uint32_t want = b[28] | b[29] << 8 | b[30] << 16 | (uint32_t)b[31] << 24;
	return crc32c(b, 28) == want;
}

static unsigned char data[BATCH][BUFSZ];
static char ctl[BATCH][CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(16 * sizeof(int))];
static struct iovec iov[BATCH];
static struct mmsghdr hdr[BATCH];
static unsigned long long nvalid, nbad;

static void drain(int fd) {
	for (;;) {
		for (int i = 0; i < BATCH; i++) {
			hdr[i].msg_hdr.msg_controllen = sizeof ctl[i];
			hdr[i].msg_hdr.msg_flags = 0;
		}
		int n = recvmmsg(fd, hdr, BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			if (valid(data[i], hdr[i].msg_len))
				nvalid++;
			else
				nbad++;
		}
		if (n < BATCH)
			return;
	}
}

int main(int argc, char **argv) {
	long tick = 0;
	if (argc == 4 && strcmp(argv[1], "-tick") == 0) {
		tick = atol(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 2 || strlen(argv[1]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "usage: floor [-tick MS] SOCKET\n");
		return 2;
	}
	crcinit();
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, rcv = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("bind");
		return 1;
	}
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){.iov_base = data[i], .iov_len = BUFSZ};
		hdr[i].msg_hdr.msg_iov = &iov[i];
		hdr[i].msg_hdr.msg_iovlen = 1;
		hdr[i].msg_hdr.msg_control = ctl[i];
	}
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = {0};
	if (tick > 0) {
		its.it_value.tv_sec = its.it_interval.tv_sec = tick / 1000;
		its.it_value.tv_nsec = its.it_interval.tv_nsec = (tick % 1000) * 1000000L;
		timerfd_settime(tfd, 0, &its, NULL);
	}
	printf("ready\n");
	fflush(stdout);
	struct pollfd pfd[3] = {{.fd = 0, .events = POLLIN}, {.fd = tfd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	int npfd = tick > 0 ? 2 : 3;
	char line[256];
	for (;;) {
		if (poll(pfd, npfd, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		if (pfd[1].revents) {
			uint64_t expiries;
			if (read(tfd, &expiries, sizeof expiries) < 0 && errno != EAGAIN)
				return 1;
		}
		if (tick > 0 ? pfd[1].revents != 0 : pfd[2].revents != 0)
			drain(fd);
		if (tick == 0) {
			/* The next deadline moves with every wake, as a stall
			 * deadline does. */
			its.it_value.tv_sec = 5;
			its.it_value.tv_nsec = 0;
			timerfd_settime(tfd, 0, &its, NULL);
		}
		if (pfd[0].revents) {
			ssize_t n = read(0, line, sizeof line);
			if (n <= 0)
				break;
			for (ssize_t i = 0; i < n; i++)
				if (line[i] == '\n')
					printf("valid=%llu bad=%llu\n", nvalid, nbad);
			fflush(stdout);
		}
	}
	unlink(argv[1]);
	return 0;
}
