/*
 * example.c: a C agent for varta-watch.
 *
 *   cc -O2 -o example vlp/c/example.c
 *   ./example SOCKET [COUNT [INTERVAL_MS]]
 *
 * It beats COUNT times (default 10), every INTERVAL_MS (default 1000),
 * then goes quiet as a hung program would: it stays alive and silent, so
 * the observer raises a stall for its pid. On SIGTERM or SIGINT it sends
 * the dying gasp (a terminal frame) and exits 0. A beat that is dropped
 * (no observer yet, or its queue still full after the send wait) is
 * reported on stderr and the agent carries on; only a bad command line
 * or a socket that cannot be created ends it early (exit status 2 or 1).
 */
#include "varta.h" /* first: it sets _POSIX_C_SOURCE for -std=c99 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* number parses argv[i] as a decimal in [lo, hi], or exits 2 naming it. */
static unsigned long number(char **argv, int i, const char *what, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long n;
	errno = 0;
	n = strtoul(argv[i], &end, 10);
	if (errno != 0 || end == argv[i] || *end != '\0' || argv[i][0] == '-' || n < lo || n > hi) {
		fprintf(stderr, "example: %s %s is not a number from %lu to %lu\n", what, argv[i], lo, hi);
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	struct varta v;
	struct sigaction sa;
	struct timespec gap;
	sigset_t block, old;
	unsigned long count = 10, interval_ms = 1000, i;
	int rc;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: example SOCKET [COUNT [INTERVAL_MS]]\n");
		return 2;
	}
	if (argc > 2)
		count = number(argv, 2, "COUNT", 0, 1000000000ul);
	if (argc > 3)
		interval_ms = number(argv, 3, "INTERVAL_MS", 1, 86400000ul);

	rc = varta_open(&v, argv[1]);
	if (rc != 0) {
		fprintf(stderr, "example: socket %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	gap.tv_sec = (time_t)(interval_ms / 1000);
	gap.tv_nsec = (long)(interval_ms % 1000) * 1000000L;
	for (i = 1; i <= count && !stop; i++) {
		/* The payload is the application's: here, the beat's number. */
		rc = varta_beat(&v, VARTA_OK, (uint32_t)i);
		if (rc != 0)
			fprintf(stderr, "example: beat %lu %s: %s\n", i,
				varta_is_drop(rc) ? "dropped" : "failed", strerror(-rc));
		if (i < count)
			nanosleep(&gap, NULL); /* a signal cuts it short */
	}

	/* Quiet: wait for a signal without a race between the check and the
	 * wait (the signals stay blocked except inside sigsuspend). */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	while (!stop)
		sigsuspend(&old);
	sigprocmask(SIG_SETMASK, &old, NULL);

	rc = varta_terminal(&v, 0);
	if (rc != 0)
		fprintf(stderr, "example: terminal frame: %s\n", strerror(-rc));
	varta_close(&v);
	return 0;
}
