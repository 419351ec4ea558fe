/*
 * gai_client - lookups through the C library's getaddrinfo, like real programs.
 *
 * getaddrinfo(name, NULL, {AF_UNSPEC, SOCK_DGRAM}) makes glibc and musl send the
 * A and AAAA queries in parallel from one socket to the nameservers of
 * /etc/resolv.conf (under `ip netns exec NS`, /etc/netns/NS/resolv.conf).
 * Same source builds with gcc (glibc) and musl-gcc (musl).
 *
 * --server IP does not change where queries go (the libc decides that); it
 * makes the client refuse to run unless every nameserver line of
 * /etc/resolv.conf is that address, so a lab run cannot leak to another server.
 *
 * Output: one JSON line on stdout:
 *   {"lookups","failed","slow_over_1s","p50_us","p99_us","max_us","no_a","no_aaaa",
 *    "elapsed_s","libc"}
 * A lookup in progress is not interrupted by --max-seconds (libc timeouts apply,
 * 5 s x 2 attempts by default).
 */
#include "common.h"

#include <netdb.h>
#include <pthread.h>

#ifdef __GLIBC__
#define LIBC_NAME "glibc"
#else
#define LIBC_NAME "musl"
#endif

static const char *prog = "gai_client";
static const char *name_tmpl = "a.example.test";
static uint64_t count = 100, deadline;
static long threads = 1;
static int family = AF_UNSPEC;
static struct run_stats st;
static uint64_t no_a, no_aaaa;

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: gai_client [--name NAME] [--count N] [--max-seconds S] [--threads T]\n"
	    "                  [--family unspec|4|6] [--server IP] [--resolv-conf PATH]\n"
	    "  --name NAME         name to resolve; a %%d is replaced by the lookup number (default a.example.test)\n"
	    "  --count N           lookups to run (default 100)\n"
	    "  --max-seconds S     stop starting lookups after S seconds (default 60)\n"
	    "  --threads T         concurrent lookup threads (default 1)\n"
	    "  --family F          getaddrinfo ai_family: unspec (A+AAAA, default), 4, 6\n"
	    "  --server IP         refuse to run unless every nameserver in the resolv.conf is IP\n"
	    "  --resolv-conf PATH  file checked by --server (default /etc/resolv.conf)\n"
	    "Prints one JSON line: lookups failed slow_over_1s p50_us p99_us max_us no_a no_aaaa\n"
	    "elapsed_s libc.\n");
}

/* 1 if every "nameserver" line of path equals server (and there is at least one). */
static int resolv_conf_only(const char *path, const char *server)
{
	unsigned char want[16], got[16];
	int wfam = inet_pton(AF_INET, server, want) == 1 ? AF_INET
	         : inet_pton(AF_INET6, server, want) == 1 ? AF_INET6 : 0;
	if (!wfam) {
		fprintf(stderr, "%s: --server must be an IPv4 or IPv6 literal\n", prog);
		return 0;
	}
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "%s: cannot read %s: %s\n", prog, path, strerror(errno));
		return 0;
	}
	char line[512];
	int n = 0, bad = 0;
	for (int lines = 0; lines < 10000 && fgets(line, sizeof line, f); lines++) {
		char addr[256];
		if (sscanf(line, " nameserver %255s", addr) != 1)
			continue;
		char *pct = strchr(addr, '%');     /* strip a zone id */
		if (pct)
			*pct = 0;
		n++;
		int gfam = inet_pton(AF_INET, addr, got) == 1 ? AF_INET
		         : inet_pton(AF_INET6, addr, got) == 1 ? AF_INET6 : 0;
		if (gfam != wfam || memcmp(got, want, wfam == AF_INET ? 4 : 16) != 0) {
			fprintf(stderr, "%s: %s lists nameserver %s, not --server %s\n", prog, path, addr, server);
			bad = 1;
		}
	}
	fclose(f);
	if (!n)
		fprintf(stderr, "%s: %s lists no nameserver (libc would use 127.0.0.1)\n", prog, path);
	return n && !bad;
}

static void *worker(void *arg)
{
	(void)arg;
	uint64_t idx;
	char name[300];
	struct addrinfo hints;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_DGRAM;

	while (stats_claim(&st, count, deadline, &idx)) {
		struct addrinfo *res = NULL;
		name_expand(name, sizeof name, name_tmpl, idx);
		uint64_t t0 = mono_ns();
		int rc = getaddrinfo(name, NULL, &hints, &res);
		uint64_t dt = mono_ns() - t0;
		st.lat[idx] = dt;
		if (rc != 0) {
			__atomic_fetch_add(&st.failed, 1, __ATOMIC_RELAXED);
		} else {
			int has4 = 0, has6 = 0;
			for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
				has4 |= ai->ai_family == AF_INET;
				has6 |= ai->ai_family == AF_INET6;
			}
			freeaddrinfo(res);
			if (!has4)
				__atomic_fetch_add(&no_a, 1, __ATOMIC_RELAXED);
			if (!has6)
				__atomic_fetch_add(&no_aaaa, 1, __ATOMIC_RELAXED);
		}
		if (dt > 1000000000ull)
			__atomic_fetch_add(&st.slow, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&st.done, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* --resolv-conf PATH and --family unspec|4|6. */
static const char *resolv = "/etc/resolv.conf";
static int own_flag(const char *a, const char *v)
{
	if (!strcmp(a, "--resolv-conf")) {
		resolv = v;
		return 1;
	}
	if (strcmp(a, "--family"))
		return 0;
	if (!strcmp(v, "unspec"))
		family = AF_UNSPEC;
	else if (!strcmp(v, "4"))
		family = AF_INET;
	else if (!strcmp(v, "6"))
		family = AF_INET6;
	else
		return flag_error(prog, "--family must be unspec, 4 or 6");
	return 1;
}

int main(int argc, char **argv)
{
	struct run_opts run = RUN_OPTS_DEFAULTS;
	const struct common_flags flags = {
		.server = &run.server, .name_tmpl = &name_tmpl, .count = &count, .max_seconds = &run.max_seconds,
		.threads = &threads, .threads_max = 1024,
	};
	int r = parse_args(argc, argv, prog, usage, &flags, own_flag);
	if (r >= 0)
		return r;
	if (!name_ok(name_tmpl)) {
		fprintf(stderr, "%s: --name is not a valid DNS name (labels 1..63, total <= 253)\n", prog);
		return 2;
	}
	if (run.server && !resolv_conf_only(resolv, run.server))
		return 2;

	st.lat = calloc((size_t)count, sizeof *st.lat);
	if (!st.lat) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	uint64_t t0 = start_clock(run.max_seconds, &deadline);
	if (run_workers(prog, threads, worker))
		return 1;

	uint64_t n = st.done, p50, p99, max;
	percentiles(st.lat, (size_t)n, &p50, &p99, &max);
	printf("{\"lookups\":%llu,\"failed\":%llu,\"slow_over_1s\":%llu,\"p50_us\":%llu,"
	       "\"p99_us\":%llu,\"max_us\":%llu,\"no_a\":%llu,\"no_aaaa\":%llu,"
	       "\"elapsed_s\":%.3f,\"libc\":\"%s\"}\n",
	       (unsigned long long)n, (unsigned long long)st.failed, (unsigned long long)st.slow,
	       (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)max,
	       (unsigned long long)no_a, (unsigned long long)no_aaaa,
	       (double)(mono_ns() - t0) / 1e9, LIBC_NAME);
	return 0;
}
