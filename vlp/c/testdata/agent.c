/*
 * agent.c runs varta.h through a script given on the command line, for
 * vlp/cagent_test.go to check what reaches a real socket:
 *
 *   agent SOCKET STEP...
 *
 *   beat:S:P    one beat with status S and payload P
 *   beats:N     N beats, status ok, payload 1..N
 *   term:P      a terminal frame with payload P
 *   wait:MS     set the send wait
 *   nonce:N     set the session's last nonce (to reach the wrap quickly)
 *   fill        with no send wait, beat until the queue refuses one
 *   fork        fork; the child runs the remaining steps and exits, the
 *               parent waits for it and then runs them too
 *   line        wait for a line on standard input (a sync point)
 *   close       varta_close
 *
 * Every step prints "STEP pid=P rc=RC ns=NS" (NS: how long it took).
 * The exit status is 2 for a bad command line, else 0.
 */
#include "../varta.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static struct varta v;

static void report(const char *step, int rc, uint64_t t0)
{
	printf("%s pid=%ld rc=%d ns=%" PRIu64 "\n", step, (long)getpid(), rc, varta_monotonic_ns() - t0);
	fflush(stdout);
}

static int run(int argc, char **argv)
{
	int i;
	for (i = 0; i < argc; i++) {
		const char *s = argv[i];
		uint64_t t0 = varta_monotonic_ns();
		unsigned long a, b;
		int rc = 0;
		if (sscanf(s, "beat:%lu:%lu", &a, &b) == 2) {
			rc = varta_beat(&v, (unsigned)a, (uint32_t)b);
		} else if (sscanf(s, "beats:%lu", &a) == 1) {
			for (b = 1; b <= a && rc == 0; b++)
				rc = varta_beat(&v, VARTA_OK, (uint32_t)b);
		} else if (sscanf(s, "term:%lu", &a) == 1) {
			rc = varta_terminal(&v, (uint32_t)a);
		} else if (sscanf(s, "wait:%lu", &a) == 1) {
			varta_set_send_wait(&v, (unsigned)a);
		} else if (strncmp(s, "nonce:", 6) == 0) {
			v.nonce = (uint64_t)strtoull(s + 6, NULL, 10);
		} else if (strcmp(s, "fill") == 0) {
			unsigned w = v.wait_ms;
			varta_set_send_wait(&v, 0);
			while ((rc = varta_beat(&v, VARTA_OK, 0)) == 0)
				;
			varta_set_send_wait(&v, w);
		} else if (strcmp(s, "fork") == 0) {
			pid_t pid = fork();
			if (pid < 0) {
				rc = -errno;
			} else if (pid == 0) {
				report(s, 0, t0);
				run(argc - i - 1, argv + i + 1);
				fflush(stdout);
				_exit(0);
			} else {
				int st;
				while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
					;
			}
		} else if (strcmp(s, "line") == 0) {
			char buf[64];
			rc = fgets(buf, sizeof buf, stdin) != NULL ? 0 : -EIO;
		} else if (strcmp(s, "close") == 0) {
			rc = varta_close(&v);
		} else {
			fprintf(stderr, "agent: unknown step %s\n", s);
			return 2;
		}
		report(s, rc, t0);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc;
	if (argc < 2) {
		fprintf(stderr, "usage: agent SOCKET STEP...\n");
		return 2;
	}
	rc = varta_open(&v, argv[1]);
	report("open", rc, varta_monotonic_ns());
	if (rc != 0)
		return 0;
	return run(argc - 2, argv + 2);
}
