/* Shared helpers for the race-lab DNS clients (header-only, C11, glibc + musl). */
#ifndef LAB_CLIENTS_COMMON_H
#define LAB_CLIENTS_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Parse a non-negative integer flag value; exits 2 with a clear line on error. */
static inline long parse_long(const char *prog, const char *flag, const char *v, long min, long max)
{
	char *end;
	errno = 0;
	long x = v ? strtol(v, &end, 10) : 0;
	if (!v || errno || *end || end == v || x < min || x > max) {
		fprintf(stderr, "%s: %s needs an integer in %ld..%ld\n", prog, flag, min, max);
		exit(2);
	}
	return x;
}

static inline double parse_double(const char *prog, const char *flag, const char *v, double min, double max)
{
	char *end;
	double x = v ? strtod(v, &end) : 0;
	if (!v || *end || end == v || !(x >= min && x <= max)) {
		fprintf(stderr, "%s: %s needs a number in %g..%g\n", prog, flag, min, max);
		exit(2);
	}
	return x;
}

/* Expand the first "%d" of tmpl with n (no printf format from the user). */
static inline void name_expand(char *out, size_t outsz, const char *tmpl, uint64_t n)
{
	const char *p = strstr(tmpl, "%d");
	if (!p) {
		snprintf(out, outsz, "%s", tmpl);
		return;
	}
	snprintf(out, outsz, "%.*s%llu%s", (int)(p - tmpl), tmpl, (unsigned long long)n, p + 2);
}

/* Validate a template: length and label syntax after expansion with a wide number. */
static inline int name_ok(const char *tmpl)
{
	char buf[300];
	name_expand(buf, sizeof buf, tmpl, 18446744073709551615ull);
	size_t n = strlen(buf);
	if (n == 0 || n > 253)
		return 0;
	size_t lab = 0;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '.') {
			if (lab == 0 && i != n - 1)
				return 0;
			lab = 0;
		} else if (++lab > 63) {
			return 0;
		}
	}
	return 1;
}

/* Build a standard recursive query (RD=1, one question, class IN). Returns length. */
static inline size_t dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype)
{
	size_t off = 12;
	if (cap < 12 + 256 + 4)
		return 0;
	memset(buf, 0, 12);
	buf[0] = (uint8_t)(id >> 8);
	buf[1] = (uint8_t)id;
	buf[2] = 0x01;          /* RD */
	buf[5] = 1;             /* QDCOUNT */
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63)
			break;
		buf[off++] = (uint8_t)l;
		memcpy(buf + off, p, l);
		off += l;
		if (!dot)
			break;
		p = dot + 1;
	}
	buf[off++] = 0;
	buf[off++] = (uint8_t)(qtype >> 8);
	buf[off++] = (uint8_t)qtype;
	buf[off++] = 0;
	buf[off++] = 1;         /* IN */
	return off;
}

/* Parse server address into sockaddr_storage; returns socklen or 0. */
static inline socklen_t parse_server(const char *ip, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return sizeof *s4;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return sizeof *s6;
	}
	return 0;
}

/* xorshift64* per-thread PRNG for query ids */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 2685821657736338717ull;
}

static inline uint64_t rng_seed(uint64_t salt)
{
	uint64_t s = mono_ns() ^ ((uint64_t)getpid() << 32) ^ (salt * 0x9e3779b97f4a7c15ull);
	return s ? s : 0x1234567ull;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sort lat[0..n) (ns) and write percentiles in microseconds. */
static inline void percentiles(uint64_t *lat, size_t n, uint64_t *p50, uint64_t *p99, uint64_t *max)
{
	*p50 = *p99 = *max = 0;
	if (!n)
		return;
	qsort(lat, n, sizeof *lat, cmp_u64);
	size_t i50 = (n * 50 + 99) / 100, i99 = (n * 99 + 99) / 100;  /* nearest rank */
	*p50 = lat[(i50 ? i50 : 1) - 1] / 1000;
	*p99 = lat[(i99 ? i99 : 1) - 1] / 1000;
	*max = lat[n - 1] / 1000;
}

#include <poll.h>

struct pair_result {
	uint64_t latency_ns;   /* send -> last answer, or -> give-up */
	uint64_t answer_ns[2]; /* send -> answer to q[k]; valid if got has bit k */
	int got;               /* bitmask: 1 = answer to q[0], 2 = answer to q[1] */
	int rcode_errors;      /* answers with RCODE != 0 */
};

/* Wait on a connected UDP socket for the answers to ids[0] and ids[1] until
 * both arrived or timeout_ns after t0. No retry: what does not come is lost. */
static inline void await_pair(int fd, const uint16_t ids[2], uint64_t t0, uint64_t timeout_ns,
                              struct pair_result *r)
{
	uint8_t buf[1500];
	uint64_t end = t0 + timeout_ns;
	r->got = 0;
	r->rcode_errors = 0;
	for (int loops = 0; loops < 100000 && r->got != 3; loops++) {
		uint64_t now = mono_ns();
		if (now >= end)
			break;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int ms = (int)((end - now + 999999) / 1000000);
		int pr = poll(&pfd, 1, ms);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr <= 0)
			continue;
		for (int k = 0; k < 8; k++) {
			ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
			if (n < 0)
				break;          /* EAGAIN, or ECONNREFUSED from ICMP: keep waiting */
			if (n < 12 || !(buf[2] & 0x80))
				continue;
			uint16_t id = (uint16_t)((buf[0] << 8) | buf[1]);
			for (int q = 0; q < 2; q++) {
				if (id == ids[q] && !(r->got & (1 << q))) {
					r->got |= 1 << q;
					r->answer_ns[q] = mono_ns() - t0;
					if (buf[3] & 0x0f)
						r->rcode_errors++;
					break;
				}
			}
		}
	}
	r->latency_ns = mono_ns() - t0;
}

/* Shared run statistics. */
struct run_stats {
	uint64_t *lat;          /* one slot per claimed lookup */
	uint64_t *lat_q[2];     /* per-query answer time, UINT64_MAX = lost (optional) */
	uint64_t next;          /* next lookup index to claim */
	uint64_t done, failed, lost, slow, rcode_errors, send_errors;
};

/* Two distinct random DNS ids for the A and the AAAA of one lookup. */
static inline void pair_ids(uint64_t *rng, uint16_t ids[2])
{
	uint64_t r = rng_next(rng);
	ids[0] = (uint16_t)r;
	ids[1] = (uint16_t)(r >> 16);
	if (ids[1] == ids[0])
		ids[1] ^= 1;
}

/* Latency buffers for `count` lookups, with per-query slots. 0 ok, -1 out of memory. */
static inline int stats_alloc(struct run_stats *s, uint64_t count)
{
	s->lat = calloc((size_t)count, sizeof *s->lat);
	s->lat_q[0] = calloc((size_t)count, sizeof *s->lat);
	s->lat_q[1] = calloc((size_t)count, sizeof *s->lat);
	return s->lat && s->lat_q[0] && s->lat_q[1] ? 0 : -1;
}

/* Starts a run's clock: sets *deadline max_seconds ahead and returns the start time. */
static inline uint64_t start_clock(double max_seconds, uint64_t *deadline)
{
	uint64_t t0 = mono_ns();
	*deadline = t0 + (uint64_t)(max_seconds * 1e9);
	return t0;
}

/* --server, --port and --max-seconds, with the defaults every client shares. */
struct run_opts {
	const char *server;
	long port;
	double max_seconds;
};
#define RUN_OPTS_DEFAULTS {.server = NULL, .port = 53, .max_seconds = 60}

/* A bad value of a client's own flag: the message, then 2 (usage error) for parse_args. */
static inline int flag_error(const char *prog, const char *what)
{
	fprintf(stderr, "%s: %s\n", prog, what);
	return 2;
}

/*
 * Runs `n` worker threads (each gets its 1-based index as argument) and joins them.
 * Returns 0, or 1 after a message when none could be started.
 */
static inline int run_workers(const char *prog, long n, void *(*worker)(void *))
{
	pthread_t *tid = calloc((size_t)n, sizeof *tid);
	if (!tid) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	long started = 0;
	for (long i = 0; i < n; i++) {
		if (pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)(i + 1)) != 0)
			break;
		started++;
	}
	for (long i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	free(tid);
	if (!started) {
		fprintf(stderr, "%s: cannot start threads\n", prog);
		return 1;
	}
	return 0;
}

static inline void stats_add(struct run_stats *s, uint64_t idx, const struct pair_result *r, int sent_ok)
{
	int lost = sent_ok ? (!(r->got & 1)) + (!(r->got & 2)) : 2;
	s->lat[idx] = r->latency_ns;
	for (int q = 0; q < 2; q++)
		if (s->lat_q[q])
			s->lat_q[q][idx] = sent_ok && (r->got & (1 << q)) ? r->answer_ns[q] : UINT64_MAX;
	__atomic_fetch_add(&s->done, 1, __ATOMIC_RELAXED);
	if (lost) {
		__atomic_fetch_add(&s->failed, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->lost, (uint64_t)lost, __ATOMIC_RELAXED);
	}
	if (!sent_ok)
		__atomic_fetch_add(&s->send_errors, 1, __ATOMIC_RELAXED);
	if (r->latency_ns > 1000000000ull)
		__atomic_fetch_add(&s->slow, 1, __ATOMIC_RELAXED);
	if (r->rcode_errors)
		__atomic_fetch_add(&s->rcode_errors, (uint64_t)r->rcode_errors, __ATOMIC_RELAXED);
}

/* Claim the next lookup index, or return 0 when the count or time bound is reached. */
static inline int stats_claim(struct run_stats *s, uint64_t count, uint64_t deadline, uint64_t *idx)
{
	if (mono_ns() >= deadline)
		return 0;
	uint64_t i = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED);
	if (i >= count)
		return 0;
	*idx = i;
	return 1;
}

/* Percentiles of the answered entries of lat_q (lost = UINT64_MAX sort last). */
static inline void q_percentiles(uint64_t *lat, size_t n, char *out, size_t outsz, const char *pfx)
{
	uint64_t p50, p99, max;
	size_t m = 0;
	if (lat) {
		qsort(lat, n, sizeof *lat, cmp_u64);
		while (m < n && lat[m] != UINT64_MAX)
			m++;
	}
	percentiles(lat, m, &p50, &p99, &max);
	snprintf(out, outsz, ",\"%s_min_us\":%llu,\"%s_p50_us\":%llu,\"%s_p99_us\":%llu", pfx,
	         (unsigned long long)(m ? lat[0] / 1000 : 0), pfx, (unsigned long long)p50, pfx,
	         (unsigned long long)p99);
}

/* Print the JSON line. Every claimed lookup finishes (bounded by its timeout),
 * so slots 0..done-1 are all filled once the workers are joined. */
static inline void stats_print(struct run_stats *s, double elapsed_s, const char *extra)
{
	uint64_t n = s->done, p50, p99, max;
	char qa[160], qaaaa[160];
	q_percentiles(s->lat_q[0], (size_t)n, qa, sizeof qa, "a");
	q_percentiles(s->lat_q[1], (size_t)n, qaaaa, sizeof qaaaa, "aaaa");
	percentiles(s->lat, (size_t)n, &p50, &p99, &max);
	printf("{\"lookups\":%llu,\"failed\":%llu,\"answers_lost\":%llu,\"slow_over_1s\":%llu,"
	       "\"p50_us\":%llu,\"p99_us\":%llu,\"max_us\":%llu%s%s,\"rcode_errors\":%llu,"
	       "\"send_errors\":%llu,\"elapsed_s\":%.3f%s}\n",
	       (unsigned long long)n, (unsigned long long)s->failed, (unsigned long long)s->lost,
	       (unsigned long long)s->slow, (unsigned long long)p50, (unsigned long long)p99,
	       (unsigned long long)max, qa, qaaaa, (unsigned long long)s->rcode_errors,
	       (unsigned long long)s->send_errors, elapsed_s, extra ? extra : "");
	fflush(stdout);
}

/*
 * The flags every client shares. A client points the fields it supports at its own variables
 * (NULL: not a flag of this client) and calls parse_common_flag() for each flag/value pair.
 */
struct common_flags {
	const char **server;
	long *port;
	const char **name_tmpl;
	uint64_t *count;
	const char *count_alias; /* another spelling of --count, or NULL */
	double *max_seconds;
	long *threads;
	long threads_max;
	uint64_t *timeout_ns;
};

/* 1: `a` was a shared flag and `v` its value (stored); 0: not one of them. Bad values exit 2. */
static inline int parse_common_flag(const char *prog, const char *a, const char *v, const struct common_flags *f)
{
	if (f->server && !strcmp(a, "--server"))
		*f->server = v;
	else if (f->port && !strcmp(a, "--port"))
		*f->port = parse_long(prog, a, v, 1, 65535);
	else if (f->name_tmpl && !strcmp(a, "--name"))
		*f->name_tmpl = v;
	else if (f->count && (!strcmp(a, "--count") || (f->count_alias && !strcmp(a, f->count_alias))))
		*f->count = (uint64_t)parse_long(prog, a, v, 1, 100000000);
	else if (f->max_seconds && !strcmp(a, "--max-seconds"))
		*f->max_seconds = parse_double(prog, a, v, 0.001, 86400);
	else if (f->threads && !strcmp(a, "--threads"))
		*f->threads = parse_long(prog, a, v, 1, f->threads_max);
	else if (f->timeout_ns && !strcmp(a, "--timeout-ms"))
		*f->timeout_ns = (uint64_t)parse_long(prog, a, v, 1, 60000) * 1000000ull;
	else
		return 0;
	return 1;
}

/*
 * Walks argv: --help prints usage and returns 0; a flag without a value or unknown to both
 * parse_common_flag() and `own` (may be NULL; returns 1 if it took the flag, 0 if unknown, 2 on a
 * bad value) prints usage and returns 2. Returns -1 when every argument was taken.
 */
static inline int parse_args(int argc, char **argv, const char *prog, void (*usage)(FILE *),
                             const struct common_flags *f, int (*own)(const char *a, const char *v))
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "%s: unknown or incomplete argument: %s\n", prog, a);
			usage(stderr);
			return 2;
		}
		i++;
		if (parse_common_flag(prog, a, v, f))
			continue;
		int r = own ? own(a, v) : 0;
		if (r == 2)
			return 2;
		if (r == 0) {
			fprintf(stderr, "%s: unknown argument: %s\n", prog, a);
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

/* --server and --name checks of the clients that send to one server themselves. 0 ok, 2 usage error. */
static inline int check_target(const char *prog, const char *server, long port, const char *name_tmpl,
                               struct sockaddr_storage *srv, socklen_t *srvlen)
{
	if (!server || !(*srvlen = parse_server(server, (int)port, srv))) {
		fprintf(stderr, "%s: --server IP is required (IPv4 or IPv6 literal)\n", prog);
		return 2;
	}
	if (!name_ok(name_tmpl)) {
		fprintf(stderr, "%s: --name is not a valid DNS name (labels 1..63, total <= 253)\n", prog);
		return 2;
	}
	return 0;
}

#endif
