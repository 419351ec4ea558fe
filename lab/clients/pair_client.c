/*
 * pair_client - resolver-like A+AAAA pairs over fresh UDP sockets.
 *
 * Each lookup: new UDP socket connected to --server, A and AAAA queries for the
 * same name sent back to back in ONE sendmmsg call (same 5-tuple, like glibc's
 * parallel lookup), wait for both answers up to --timeout-ms, close. No retry:
 * missing answers are counted as lost. Sends only to --server.
 *
 * Output: one JSON line on stdout:
 *   {"lookups","failed","answers_lost","slow_over_1s","p50_us","p99_us","max_us",
 *    "a_min_us","a_p50_us","a_p99_us","aaaa_min_us","aaaa_p50_us","aaaa_p99_us",
 *    "rcode_errors","send_errors","elapsed_s"}
 * p50/p99/max: send -> both answers (or give-up); a_... and aaaa_...: send -> that answer,
 * over answered queries only.
 * Exit: 0 on a completed run (even with losses), 2 on usage errors, 1 on setup errors.
 */
#include "common.h"

#include <pthread.h>

static const char *prog = "pair_client";
static struct sockaddr_storage srv;
static socklen_t srvlen;
static const char *name_tmpl = "a.example.test";
static uint64_t count = 1000, timeout_ns = 1000000000ull, deadline;
static long threads = 1;
static struct run_stats st;

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: pair_client --server IP [--port 53] [--name NAME] [--count N]\n"
	    "                   [--max-seconds S] [--threads T] [--timeout-ms MS]\n"
	    "  --server IP       DNS server (IPv4 or IPv6); the only destination used\n"
	    "  --port P          UDP port (default 53)\n"
	    "  --name NAME       query name; a %%d is replaced by the lookup number (default a.example.test)\n"
	    "  --count N         lookups (A+AAAA pairs) to run (default 1000)\n"
	    "  --max-seconds S   stop starting lookups after S seconds (default 60)\n"
	    "  --threads T       concurrent lookup threads (default 1)\n"
	    "  --timeout-ms MS   wait for both answers this long, no retry (default 1000)\n"
	    "Prints one JSON line: lookups failed answers_lost slow_over_1s p50_us p99_us max_us\n"
	    "a_min_us a_p50_us a_p99_us aaaa_min_us aaaa_p50_us aaaa_p99_us (per-answer times)\n"
	    "rcode_errors send_errors elapsed_s.\n");
}

static void *worker(void *arg)
{
	uint64_t rng = rng_seed((uint64_t)(uintptr_t)arg), idx;
	char name[300];
	uint8_t q[2][300];
	static const uint16_t qtypes[2] = { 1, 28 };

	while (stats_claim(&st, count, deadline, &idx)) {
		uint16_t ids[2];
		pair_ids(&rng, ids);
		name_expand(name, sizeof name, name_tmpl, idx);

		struct iovec iov[2];
		struct mmsghdr mm[2];
		memset(mm, 0, sizeof mm);
		for (int k = 0; k < 2; k++) {
			iov[k].iov_base = q[k];
			iov[k].iov_len = dns_build_query(q[k], sizeof q[k], ids[k], name, qtypes[k]);
			mm[k].msg_hdr.msg_iov = &iov[k];
			mm[k].msg_hdr.msg_iovlen = 1;
		}

		struct pair_result res = { 0 };
		int ok = 0;
		int fd = socket(srv.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&srv, srvlen) == 0) {
			uint64_t t0 = mono_ns();
			int sent = sendmmsg(fd, mm, 2, 0);
			if (sent == 2) {
				ok = 1;
				await_pair(fd, ids, t0, timeout_ns, &res);
			} else {
				res.latency_ns = mono_ns() - t0;
			}
		}
		if (fd >= 0)
			close(fd);
		stats_add(&st, idx, &res, ok);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct run_opts run = RUN_OPTS_DEFAULTS;
	const struct common_flags flags = {
		.server = &run.server, .port = &run.port, .name_tmpl = &name_tmpl, .count = &count,
		.max_seconds = &run.max_seconds, .threads = &threads, .threads_max = 1024, .timeout_ns = &timeout_ns,
	};
	int r = parse_args(argc, argv, prog, usage, &flags, NULL);
	if (r >= 0)
		return r;
	if ((r = check_target(prog, run.server, run.port, name_tmpl, &srv, &srvlen)))
		return r;
	if (stats_alloc(&st, count)) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}

	uint64_t t0 = start_clock(run.max_seconds, &deadline);
	if (run_workers(prog, threads, worker))
		return 1;
	stats_print(&st, (double)(mono_ns() - t0) / 1e9, NULL);
	return 0;
}
