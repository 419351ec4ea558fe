/*
 * split_cpu_client - A and AAAA of one socket sent from two CPUs at once.
 *
 * Like pair_client (fresh connected UDP socket per lookup, no retry, lost
 * answers counted), but the A query is sent by a thread pinned to CPU a and
 * the AAAA query by a thread pinned to CPU b, released together by a spin
 * barrier. The two packets of one 5-tuple then go through conntrack on two
 * CPUs concurrently: the setup that produces insert clashes on a modern kernel
 * with random DNAT. Sends only to --server.
 *
 * Output: one JSON line on stdout, as pair_client plus "cpus":[a,b] and
 * "release_skew_ns_max" (largest gap observed between the two threads leaving
 * the barrier, by CLOCK_MONOTONIC; an upper bound on the send skew).
 */
#include "common.h"

#include <pthread.h>
#include <sched.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define LD(p)    __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static const char *prog = "split_cpu_client";
static struct sockaddr_storage srv;
static socklen_t srvlen;
static const char *name_tmpl = "a.example.test";
static uint64_t count = 1000, timeout_ns = 1000000000ull, deadline;
static int cpu_a = 0, cpu_b = 1;
static long npairs = 1;
static struct run_stats st;
static uint64_t skew_max;

struct pairctx {
	int cpu_first, cpu_second;
	int fd;
	uint8_t qb[300];
	size_t qb_len;
	uint64_t prep, ready, go, sent;   /* generations */
	uint64_t tb;                      /* B's release timestamp */
	int b_ok;
	int stop;
	int pin_error;
	long salt;
	pthread_t ta, tb_thr;
};

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: split_cpu_client --server IP [--port 53] [--name NAME] [--count N]\n"
	    "                        [--max-seconds S] [--threads P] [--timeout-ms MS] [--cpus A,B]\n"
	    "  --server IP          DNS server (IPv4 or IPv6); the only destination used\n"
	    "  --port P             UDP port (default 53)\n"
	    "  --name NAME          query name; a %%d is replaced by the lookup number (default a.example.test)\n"
	    "  --count N            lookups (A+AAAA pairs) to run (default 1000); alias --pairs-per-run\n"
	    "  --max-seconds S      stop starting lookups after S seconds (default 60)\n"
	    "  --threads P          thread pairs (default 1); odd pairs swap the two CPUs\n"
	    "  --timeout-ms MS      wait for both answers this long, no retry (default 1000)\n"
	    "  --cpus A,B           CPUs for the A and the AAAA sender (default 0,1)\n"
	    "Prints one JSON line: lookups failed answers_lost slow_over_1s p50_us p99_us max_us\n"
	    "a_min_us a_p50_us a_p99_us aaaa_min_us aaaa_p50_us aaaa_p99_us (per-answer times)\n"
	    "rcode_errors send_errors elapsed_s cpus release_skew_ns_max.\n");
}

static int pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set);   /* 0 = calling thread */
}

/* Wait until *p == want (or stop): spin briefly, then yield. */
static int wait_gen(struct pairctx *c, uint64_t *p, uint64_t want, int tight)
{
	for (uint64_t i = 0;; i++) {
		if (LD(p) == want)
			return 1;
		if (LD(&c->stop))
			return 0;
		if (i < (tight ? 2000000u : 2000u))
			cpu_relax();
		else
			sched_yield();
	}
}

/* AAAA sender */
static void *thread_b(void *arg)
{
	struct pairctx *c = arg;
	if (pin(c->cpu_second) != 0) {
		ST(&c->pin_error, 1);
		ST(&c->stop, 1);
		return NULL;
	}
	for (uint64_t g = 1;; g++) {
		if (!wait_gen(c, &c->prep, g, 0))
			break;
		ST(&c->ready, g);
		if (!wait_gen(c, &c->go, g, 1))
			break;
		c->tb = mono_ns();
		c->b_ok = send(c->fd, c->qb, c->qb_len, 0) == (ssize_t)c->qb_len;
		ST(&c->sent, g);
	}
	return NULL;
}

/* A sender and coordinator */
static void *thread_a(void *arg)
{
	struct pairctx *c = arg;
	uint64_t rng = rng_seed((uint64_t)c->salt), idx, g = 0;
	char name[300];
	uint8_t qa[300];

	if (pin(c->cpu_first) != 0) {
		ST(&c->pin_error, 1);
		ST(&c->stop, 1);
		return NULL;
	}
	while (stats_claim(&st, count, deadline, &idx)) {
		uint16_t ids[2];
		pair_ids(&rng, ids);
		name_expand(name, sizeof name, name_tmpl, idx);
		size_t qa_len = dns_build_query(qa, sizeof qa, ids[0], name, 1);
		c->qb_len = dns_build_query(c->qb, sizeof c->qb, ids[1], name, 28);

		struct pair_result res = { 0 };
		int ok = 0;
		int fd = socket(srv.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&srv, srvlen) == 0) {
			c->fd = fd;
			g++;
			ST(&c->prep, g);
			if (!wait_gen(c, &c->ready, g, 1) || LD(&c->pin_error)) {
				close(fd);
				stats_add(&st, idx, &res, 0);
				break;
			}
			ST(&c->go, g);
			uint64_t t0 = mono_ns();
			int a_ok = send(fd, qa, qa_len, 0) == (ssize_t)qa_len;
			wait_gen(c, &c->sent, g, 0);          /* B done with the fd */
			uint64_t skew = c->tb > t0 ? c->tb - t0 : t0 - c->tb;
			uint64_t cur = LD(&skew_max);
			while (skew > cur && !__atomic_compare_exchange_n(&skew_max, &cur, skew, 0,
			                                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				;
			ok = a_ok && c->b_ok;
			if (ok)
				await_pair(fd, ids, t0, timeout_ns, &res);
			else
				res.latency_ns = mono_ns() - t0;
		}
		if (fd >= 0)
			close(fd);
		stats_add(&st, idx, &res, ok);
	}
	ST(&c->stop, 1);
	return NULL;
}

/* --cpus A,B: the two CPUs the A and the AAAA sender are pinned to. */
static int own_flag(const char *a, const char *v)
{
	if (strcmp(a, "--cpus"))
		return 0;
	if (sscanf(v, "%d,%d", &cpu_a, &cpu_b) != 2 || cpu_a < 0 || cpu_b < 0 ||
	    cpu_a >= CPU_SETSIZE || cpu_b >= CPU_SETSIZE || cpu_a == cpu_b)
		return flag_error(prog, "--cpus needs two different CPU numbers, e.g. 0,1");
	return 1;
}

int main(int argc, char **argv)
{
	struct run_opts run = RUN_OPTS_DEFAULTS;
	const struct common_flags flags = {
		.server = &run.server, .port = &run.port, .name_tmpl = &name_tmpl, .count = &count,
		.count_alias = "--pairs-per-run", .max_seconds = &run.max_seconds, .threads = &npairs,
		.threads_max = 256, .timeout_ns = &timeout_ns,
	};
	int r = parse_args(argc, argv, prog, usage, &flags, own_flag);
	if (r >= 0)
		return r;
	if ((r = check_target(prog, run.server, run.port, name_tmpl, &srv, &srvlen)))
		return r;
	cpu_set_t allowed;
	CPU_ZERO(&allowed);
	if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 ||
	    !CPU_ISSET(cpu_a, &allowed) || !CPU_ISSET(cpu_b, &allowed)) {
		fprintf(stderr, "%s: CPUs %d and %d must both be available to this process\n", prog,
		        cpu_a, cpu_b);
		return 1;
	}

	struct pairctx *ctx = calloc((size_t)npairs, sizeof *ctx);
	if (stats_alloc(&st, count) || !ctx) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	uint64_t t0 = start_clock(run.max_seconds, &deadline);
	long started = 0;
	for (long i = 0; i < npairs; i++) {
		struct pairctx *c = &ctx[i];
		c->cpu_first = (i & 1) ? cpu_b : cpu_a;
		c->cpu_second = (i & 1) ? cpu_a : cpu_b;
		c->salt = i + 1;
		if (pthread_create(&c->tb_thr, NULL, thread_b, c) != 0)
			break;
		if (pthread_create(&c->ta, NULL, thread_a, c) != 0) {
			ST(&c->stop, 1);
			pthread_join(c->tb_thr, NULL);
			break;
		}
		started++;
	}
	if (!started) {
		fprintf(stderr, "%s: cannot start threads\n", prog);
		return 1;
	}
	int pin_error = 0;
	for (long i = 0; i < started; i++) {
		pthread_join(ctx[i].ta, NULL);
		pthread_join(ctx[i].tb_thr, NULL);
		pin_error |= ctx[i].pin_error;
	}
	if (pin_error) {
		fprintf(stderr, "%s: sched_setaffinity failed for CPU %d or %d\n", prog, cpu_a, cpu_b);
		return 1;
	}
	char extra[96];
	snprintf(extra, sizeof extra, ",\"cpus\":[%d,%d],\"release_skew_ns_max\":%llu", cpu_a, cpu_b,
	         (unsigned long long)skew_max);
	stats_print(&st, (double)(mono_ns() - t0) / 1e9, extra);
	return 0;
}
