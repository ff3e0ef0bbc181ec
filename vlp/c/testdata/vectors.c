/*
 * vectors.c checks varta.h against the conformance vectors
 * (vlp/testdata/vlp-test-vectors.json). The Go test (vlp/cagent_test.go)
 * reads the JSON and feeds one vector per line on standard input, so this
 * side needs no JSON parser:
 *
 *   crc ID EXPECTED_CRC_HEX INPUT_HEX            (INPUT_HEX "-" when empty)
 *   enc ID STATUS PID TIMESTAMP NONCE PAYLOAD WIRE_HEX
 *   dec ID WIRE_HEX ERROR_NAME
 *
 * "enc" encodes the fields and compares the bytes with WIRE_HEX, then
 * decodes WIRE_HEX and compares the fields; "dec" decodes WIRE_HEX and
 * compares the failure's name. It prints one line per vector and, last,
 * "checked N failed M"; the exit status is 1 when any vector failed or a
 * line could not be read.
 */
#include "../varta.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* unhex decodes s into out (room for max bytes) and returns the length,
 * or -1 for bad hex or too long. "-" is the empty string. */
static long unhex(const char *s, unsigned char *out, size_t max)
{
	size_t n = 0;
	if (strcmp(s, "-") == 0)
		return 0;
	while (s[0] != '\0') {
		int hi = hexval(s[0]), lo = s[1] ? hexval(s[1]) : -1;
		if (hi < 0 || lo < 0 || n == max)
			return -1;
		out[n++] = (unsigned char)(hi << 4 | lo);
		s += 2;
	}
	return (long)n;
}

static int status_of(const char *s)
{
	if (strcmp(s, "ok") == 0)
		return VARTA_OK;
	if (strcmp(s, "degraded") == 0)
		return VARTA_DEGRADED;
	if (strcmp(s, "critical") == 0)
		return VARTA_CRITICAL;
	return -1;
}

int main(void)
{
	char line[1024], kind[16], id[128], a[256], b[256], c[256], d[256], e[256], f[256];
	unsigned char in[128], out[VARTA_FRAME_SIZE];
	unsigned long checked = 0, failed = 0;
	while (fgets(line, sizeof line, stdin) != NULL) {
		int ok = 0;
		if (sscanf(line, "%15s %127s", kind, id) != 2) {
			printf("unreadable line: %s", line);
			return 1;
		}
		if (strcmp(kind, "crc") == 0 && sscanf(line, "%*s %*s %255s %255s", a, b) == 2) {
			long n = unhex(b, in, sizeof in);
			unsigned long want = strtoul(a, NULL, 16);
			uint32_t got = n < 0 ? 0 : varta_crc32c(in, (size_t)n);
			ok = n >= 0 && got == want;
			printf("%s crc %s: got %08" PRIx32 " want %08lx\n", ok ? "ok" : "FAIL", id, got, want);
		} else if (strcmp(kind, "enc") == 0 &&
			   sscanf(line, "%*s %*s %255s %255s %255s %255s %255s %255s", a, b, c, d, e, f) == 6) {
			struct varta_frame fr, back;
			unsigned char wire[VARTA_FRAME_SIZE];
			int st = status_of(a), derr;
			fr.status = (uint8_t)st;
			fr.pid = (uint32_t)strtoul(b, NULL, 10);
			fr.timestamp = (uint64_t)strtoull(c, NULL, 10); /* never via double */
			fr.nonce = (uint64_t)strtoull(d, NULL, 10);
			fr.payload = (uint32_t)strtoul(e, NULL, 10);
			varta_encode(out, &fr);
			derr = varta_decode(wire, unhex(f, wire, sizeof wire) == VARTA_FRAME_SIZE ? VARTA_FRAME_SIZE : 0, &back);
			ok = st >= 0 && memcmp(out, wire, VARTA_FRAME_SIZE) == 0 && derr == 0 &&
			     back.status == fr.status && back.pid == fr.pid && back.timestamp == fr.timestamp &&
			     back.nonce == fr.nonce && back.payload == fr.payload;
			printf("%s enc %s: decode %s\n", ok ? "ok" : "FAIL", id, varta_decode_error_name(derr));
		} else if (strcmp(kind, "dec") == 0 && sscanf(line, "%*s %*s %255s %255s", a, b) == 2) {
			struct varta_frame back;
			unsigned char wire[128];
			long n = unhex(a, wire, sizeof wire);
			int derr = n < 0 ? -1 : varta_decode(wire, (size_t)n, &back);
			ok = derr > 0 && strcmp(varta_decode_error_name(derr), b) == 0 && back.pid == 0 && back.nonce == 0;
			printf("%s dec %s: got %s want %s\n", ok ? "ok" : "FAIL", id, varta_decode_error_name(derr), b);
		} else {
			printf("unreadable line: %s", line);
			return 1;
		}
		checked++;
		if (!ok)
			failed++;
	}
	printf("checked %lu failed %lu\n", checked, failed);
	return failed == 0 ? 0 : 1;
}
