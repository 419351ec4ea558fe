/*
 * stub_load - open-loop, rate-paced DNS load shaped like stub resolvers (glibc, musl): every lookup
 * opens its own UDP socket (its own flow), sends A and AAAA for one name back to back (one sendmmsg,
 * or the AAAA --gap-us later), waits for both answers up to --timeout-ms and closes. dnsperf spreads a
 * name's A and AAAA over different sockets instead, which no pod does; pair mode needs the real shape.
 *
 * Used by bench/sweeps only; sends only to --server. It does not retry and does not resolve anything.
 *
 * Timeline: --warmup S of unmeasured lookups (held depth, pair table and conntrack reach their steady
 * state), then --seconds S of measured ones, then waiting for the last answers. On stderr it prints
 * {"event":"measure-start"} and {"event":"measure-end"} when the measured part starts and ends (the
 * harness samples CPU between them); on stdout one JSON summary line. --dump FILE writes one line per
 * measured lookup: "A_us AAAA_us" (-1: lost or not asked).
 *
 * --pool K: K long-lived sockets used round-robin instead of one per lookup (for deep holds: 100,000
 * lookups outstanding do not fit in the ephemeral port range).
 *
 * Build: make -C bench/clients
 */
#include "../../lab/clients/common.h"

#include <sys/epoll.h>
#include <sys/resource.h>

#define POOL_FLAG (1ull << 63)
#define ID_SLOTS 32768 /* per pooled socket: lookups outstanding on one socket at most */

struct lookup {
	uint64_t t_a, t_aaaa; /* send times (ns); 0: not sent (yet) */
	int32_t a_us, aaaa_us; /* answer latency, -1: none */
	int fd;                /* own socket (no pool), -1 once closed */
	uint16_t id;           /* A id; AAAA is id | 1 */
	uint8_t want, got;     /* bit 0: A, bit 1: AAAA */
	uint8_t measured;
};

static const char *prog = "stub_load";
static struct sockaddr_storage srv;
static socklen_t srvlen;

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: stub_load --server IP --rate N --seconds S [options]\n"
	    "  --server IP       DNS server (IPv4 or IPv6 literal); the only destination used\n"
	    "  --port P          UDP port (default 53)\n"
	    "  --rate N          lookups per second (each is A + AAAA, or AAAA only)\n"
	    "  --seconds S       measured seconds of sending\n"
	    "  --warmup S        unmeasured seconds of sending first (default 0)\n"
	    "  --timeout-ms MS   wait for answers this long, no retry (default 2000)\n"
	    "  --types pair|aaaa|a  A+AAAA per lookup (default), AAAA only, or A only\n"
	    "  --gap-us US       send the AAAA this long after the A (default 0: one sendmmsg)\n"
	    "  --pool K          K long-lived sockets round-robin instead of one per lookup (default 0)\n"
	    "  --names N         hostI.example.test, I = 1..N cycling (default 250)\n"
	    "  --max-open N      lookups outstanding at most; sends wait beyond (default 60000, pooled 1000000)\n"
	    "  --dump FILE       per measured lookup: \"A_us AAAA_us\" (-1: lost or not asked)\n");
}

static int new_socket(void)
{
	int fd = socket(srv.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&srv, srvlen) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_query(int fd, uint16_t id, const char *name, uint16_t qtype)
{
	uint8_t q[300];
	size_t n = dns_build_query(q, sizeof q, id, name, qtype);
	return send(fd, q, n, 0) == (ssize_t)n ? 0 : -1;
}

static int send_pair(int fd, uint16_t id, const char *name)
{
	uint8_t q[2][300];
	struct iovec iov[2];
	struct mmsghdr mm[2];
	memset(mm, 0, sizeof mm);
	for (int k = 0; k < 2; k++) {
		iov[k].iov_base = q[k];
		iov[k].iov_len = dns_build_query(q[k], sizeof q[k], (uint16_t)(id | k), name, k ? 28 : 1);
		mm[k].msg_hdr.msg_iov = &iov[k];
		mm[k].msg_hdr.msg_iovlen = 1;
	}
	return sendmmsg(fd, mm, 2, 0) == 2 ? 0 : -1;
}

/* The flags only stub_load has; parse_args() takes --server and --port. */
static const char *dump, *types = "pair";
static long pool = 0, names = 250, max_open = -1;
static double rate = 0, seconds = 0, warmup = 0, timeout_ms = 2000, gap_us = 0;

/* The numeric flags: each sets either a double (parse_double) or a long (parse_long) within min..max. */
static const struct {
	const char *flag;
	double *d;
	long *l;
	double min, max;
} num_flags[] = {
	{"--rate", &rate, NULL, 1, 1e6},
	{"--seconds", &seconds, NULL, 0.01, 600},
	{"--warmup", &warmup, NULL, 0, 600},
	{"--timeout-ms", &timeout_ms, NULL, 1, 60000},
	{"--gap-us", &gap_us, NULL, 0, 60e6},
	{"--pool", NULL, &pool, 0, 65536},
	{"--names", NULL, &names, 1, 1000000},
	{"--max-open", NULL, &max_open, 1, 1000000},
};

/* 1: took the flag, 0: not ours, 2: bad value (parse_args' contract). */
static int own_flag(const char *a, const char *v)
{
	for (size_t k = 0; k < sizeof num_flags / sizeof num_flags[0]; k++) {
		if (strcmp(a, num_flags[k].flag))
			continue;
		if (num_flags[k].d)
			*num_flags[k].d = parse_double(prog, a, v, num_flags[k].min, num_flags[k].max);
		else
			*num_flags[k].l = parse_long(prog, a, v, (long)num_flags[k].min, (long)num_flags[k].max);
		return 1;
	}
	if (!strcmp(a, "--dump"))
		dump = v;
	else if (!strcmp(a, "--types")) {
		if (strcmp(v, "pair") && strcmp(v, "aaaa") && strcmp(v, "a"))
			return flag_error(prog, "--types must be pair, aaaa or a");
		types = v;
	} else
		return 0;
	return 1;
}

int main(int argc, char **argv)
{
	const char *server = NULL;
	long port = 53;
	const struct common_flags flags = {.server = &server, .port = &port};
	int r = parse_args(argc, argv, prog, usage, &flags, own_flag);
	if (r >= 0)
		return r;
	if (!server || !(srvlen = parse_server(server, (int)port, &srv)) || rate <= 0 || seconds <= 0) {
		fprintf(stderr, "%s: --server IP, --rate and --seconds are required\n", prog);
		usage(stderr);
		return 2;
	}
	/* One socket per lookup: bounded by descriptors and ports. Pooled: only by memory (the lookup table). */
	if (max_open < 0)
		max_open = pool ? 1000000 : 60000;
	const int pair = !strcmp(types, "pair"), a_only = !strcmp(types, "a");
	const uint8_t want = pair ? 3 : a_only ? 1 : 2;

	/* One socket per outstanding lookup: lift the descriptor limit as far as allowed. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (!pool && (long)rl.rlim_cur < max_open + 64)
			max_open = (long)rl.rlim_cur - 64;
	}

	uint64_t total = (uint64_t)(rate * (warmup + seconds)) + 1;
	if (total > 50000000ull) {
		fprintf(stderr, "%s: rate x seconds is over 50M lookups\n", prog);
		return 2;
	}
	struct lookup *lk = calloc((size_t)total, sizeof *lk);
	int *pfd = pool ? calloc((size_t)pool, sizeof *pfd) : NULL;
	uint32_t *pmap = pool ? calloc((size_t)pool * ID_SLOTS, sizeof *pmap) : NULL;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!lk || (pool && (!pfd || !pmap)) || ep < 0) {
		fprintf(stderr, "%s: out of memory or no epoll\n", prog);
		return 1;
	}
	for (long k = 0; k < pool; k++) {
		int b = 4 << 20;
		if ((pfd[k] = new_socket()) < 0) {
			fprintf(stderr, "%s: socket/connect: %s\n", prog, strerror(errno));
			return 1;
		}
		setsockopt(pfd[k], SOL_SOCKET, SO_RCVBUFFORCE, &b, sizeof b);
		/* A held query still counts against its socket's send buffer (the skb is not orphaned on the
		 * way through the veth pair): 212 kB default caps one socket at ~250 held packets. */
		setsockopt(pfd[k], SOL_SOCKET, SO_SNDBUFFORCE, &b, sizeof b);
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = POOL_FLAG | (uint64_t)k };
		epoll_ctl(ep, EPOLL_CTL_ADD, pfd[k], &ev);
	}

	const uint64_t period = (uint64_t)(1e9 / rate), gap = (uint64_t)(gap_us * 1e3);
	const uint64_t timeout = (uint64_t)(timeout_ms * 1e6);
	const uint64_t t0 = mono_ns();
	const uint64_t t_measure = t0 + (uint64_t)(warmup * 1e9), t_end = t_measure + (uint64_t)(seconds * 1e9);
	uint64_t started = 0, oldest = 0, gap_next = 0, open = 0, next_send = t0, rng = rng_seed(7);
	uint64_t send_errors = 0, socket_errors = 0, throttled = 0, late_max_ns = 0, measured = 0;
	uint64_t lost_a = 0, lost_aaaa = 0, answers = 0, stray = 0;
	int phase = warmup > 0 ? 0 : 1; /* 0 warm-up, 1 measuring, 2 draining */
	char name[64];
	uint8_t buf[1500];

	if (phase == 1)
		fprintf(stderr, "{\"event\":\"measure-start\"}\n");
	for (;;) {
		uint64_t now = mono_ns();
		if (phase == 0 && now >= t_measure) {
			phase = 1;
			fprintf(stderr, "{\"event\":\"measure-start\"}\n");
		}
		if (phase == 1 && now >= t_end) {
			phase = 2;
			fprintf(stderr, "{\"event\":\"measure-end\"}\n");
		}
		/* Sends due now (bursts after a late wake-up keep the average rate). */
		while (phase < 2 && next_send <= now && started < total) {
			if ((long)open >= max_open) {
				throttled++;
				break;
			}
			struct lookup *l = &lk[started];
			uint64_t idx = started++;
			if (now - next_send > late_max_ns)
				late_max_ns = now - next_send;
			next_send += period;
			l->a_us = l->aaaa_us = -1;
			l->want = want;
			l->measured = now >= t_measure;
			measured += l->measured;
			snprintf(name, sizeof name, "host%llu.example.test", (unsigned long long)(idx % (uint64_t)names + 1));
			int fd;
			if (pool) {
				long k = (long)(idx % (uint64_t)pool);
				uint64_t j = idx / (uint64_t)pool;
				fd = pfd[k];
				l->id = (uint16_t)((j % ID_SLOTS) << 1);
				pmap[(size_t)k * ID_SLOTS + j % ID_SLOTS] = (uint32_t)idx;
				l->fd = -1;
			} else {
				l->id = (uint16_t)(rng_next(&rng) & 0xfffe);
				fd = new_socket();
				if (fd < 0) {
					socket_errors++;
					l->fd = -1;
					l->got = l->want; /* never outstanding: lost in the dump (-1 -1), not in open */
					continue;
				}
				l->fd = fd;
				struct epoll_event ev = { .events = EPOLLIN, .data.u64 = idx };
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			}
			open++;
			l->t_a = mono_ns();
			int r;
			if (a_only) {
				r = send_query(fd, l->id, name, 1);
			} else if (!pair) {
				l->t_aaaa = l->t_a;
				r = send_query(fd, (uint16_t)(l->id | 1), name, 28);
			} else if (!gap) {
				l->t_aaaa = l->t_a;
				r = send_pair(fd, l->id, name);
			} else {
				r = send_query(fd, l->id, name, 1);
			}
			if (r < 0)
				send_errors++;
			/* The send carries the router's whole path (veth forwarding runs in the sender's context):
			 * a fresh clock keeps the lateness honest and the burst bounded. */
			now = mono_ns();
		}
		/* Trailing AAAA due (in send order: every lookup has the same gap). */
		if (pair && gap) {
			while (gap_next < started && lk[gap_next].t_a + gap <= now) {
				struct lookup *l = &lk[gap_next++];
				if (!l->t_a || (l->fd < 0 && !pool))
					continue;
				snprintf(name, sizeof name, "host%llu.example.test",
				         (unsigned long long)((gap_next - 1) % (uint64_t)names + 1));
				l->t_aaaa = mono_ns();
				if (send_query(pool ? pfd[(gap_next - 1) % (uint64_t)pool] : l->fd, (uint16_t)(l->id | 1), name, 28) < 0)
					send_errors++;
			}
		}
		/* Expire the oldest lookups (same timeout for all: in send order). */
		while (oldest < started) {
			struct lookup *l = &lk[oldest];
			int done = (l->got & l->want) == l->want;
			if (!done && l->t_a && now < l->t_a + timeout + (pair ? gap : 0))
				break;
			if (!done) {
				if (l->measured) {
					lost_a += (l->want & 1) && !(l->got & 1);
					lost_aaaa += (l->want & 2) && !(l->got & 2);
				}
				if (l->fd >= 0)
					close(l->fd);
				l->fd = -1;
				open--;
			}
			oldest++;
		}
		if (phase == 2 && oldest >= started)
			break;

		/* Sleep until the next send, trailing AAAA or expiry. */
		uint64_t wake = now + 50000000ull;
		if (phase < 2 && started < total && next_send < wake)
			wake = (long)open >= max_open ? now + 100000 : next_send; /* throttled: no busy loop */
		if (pair && gap && gap_next < started && lk[gap_next].t_a + gap < wake)
			wake = lk[gap_next].t_a + gap;
		if (oldest < started && lk[oldest].t_a + timeout + gap < wake)
			wake = lk[oldest].t_a + timeout + gap;
		if (phase == 0 && t_measure < wake)
			wake = t_measure;
		if (phase == 1 && t_end < wake)
			wake = t_end;
		struct timespec ts = { 0, 0 };
		if (wake > now) {
			ts.tv_sec = (time_t)((wake - now) / 1000000000ull);
			ts.tv_nsec = (long)((wake - now) % 1000000000ull);
		}
		struct epoll_event evs[256];
		int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
		for (int e = 0; e < n; e++) {
			uint64_t d = evs[e].data.u64;
			int fd = d & POOL_FLAG ? pfd[d & ~POOL_FLAG] : lk[d].fd;
			if (fd < 0)
				continue;
			for (int k = 0; k < 64; k++) {
				ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
				if (got < 0)
					break;
				if (got < 12 || !(buf[2] & 0x80))
					continue;
				uint16_t id = (uint16_t)((buf[0] << 8) | buf[1]);
				uint64_t idx = d & POOL_FLAG ? pmap[(d & ~POOL_FLAG) * ID_SLOTS + (id >> 1)] : d;
				struct lookup *l = &lk[idx];
				int q = id & 1; /* 0: A, 1: AAAA */
				/* idx < oldest: expired (or done) already; a late answer must not count twice. */
				if (idx >= started || idx < oldest || (uint16_t)(l->id | q) != id || (l->got & (1 << q)) ||
				    !(l->want & (1 << q))) {
					stray++;
					continue;
				}
				uint64_t t = mono_ns();
				l->got |= (uint8_t)(1 << q);
				answers++;
				int32_t us = (int32_t)((t - (q ? l->t_aaaa : l->t_a)) / 1000);
				if (q)
					l->aaaa_us = us;
				else
					l->a_us = us;
				if ((l->got & l->want) == l->want) {
					open--;
					if (!pool) {
						close(fd);
						l->fd = -1;
						break;
					}
				}
			}
		}
	}

	if (dump) {
		FILE *f = fopen(dump, "w");
		if (!f) {
			fprintf(stderr, "%s: %s: %s\n", prog, dump, strerror(errno));
			return 1;
		}
		for (uint64_t i = 0; i < started; i++)
			if (lk[i].measured)
				fprintf(f, "%d %d\n", lk[i].a_us, lk[i].aaaa_us);
		fclose(f);
	}
	printf("{\"lookups\":%llu,\"measured\":%llu,\"answers\":%llu,\"lost_a\":%llu,\"lost_aaaa\":%llu,"
	       "\"send_errors\":%llu,\"socket_errors\":%llu,\"throttled\":%llu,\"stray\":%llu,"
	       "\"late_max_us\":%llu,\"elapsed_s\":%.3f}\n",
	       (unsigned long long)started, (unsigned long long)measured, (unsigned long long)answers,
	       (unsigned long long)lost_a, (unsigned long long)lost_aaaa, (unsigned long long)send_errors,
	       (unsigned long long)socket_errors, (unsigned long long)throttled, (unsigned long long)stray,
	       (unsigned long long)(late_max_ns / 1000), (double)(mono_ns() - t0) / 1e9);
	return 0;
}
