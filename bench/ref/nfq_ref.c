/*
 * nfq_ref - reference ("physical floor") user-space NFQUEUE verdict loop.
 *
 * Binds one NFQUEUE with libmnl + libnetfilter_queue's nfq_nlmsg_* API and
 * either accepts every packet as soon as it is read (--mode accept) or holds
 * DNS AAAA queries for a fixed delay in a FIFO released by a timerfd
 * (--mode hold). Used by the benchmark as the lower bound the daemon's data
 * plane is compared against; deliberately minimal.
 *
 * Loop: epoll(netlink, timerfd, signalfd) -> recvmmsg drain (batch 64,
 * MSG_DONTWAIT) -> one verdict per packet, or push (id, deadline) -> release
 * expired held ids -> all verdicts of the wake-up concatenated in one sendto.
 * NFQNL_MSG_VERDICT_BATCH is never used (it would accept held lower ids).
 *
 * Build: cc -O2 -Wall nfq_ref.c -o nfq_ref -lnetfilter_queue -lmnl
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define BATCH        64
#define RXBUF        2048            /* copy range 512 + attributes fits easily */
#define COPY_RANGE   512
#define QMAXLEN      131072          /* the memory sweep holds 100,000 */
#define RCVBUF       (8 * 1024 * 1024)
#define FIFO_CAP     262144          /* power of two, > QMAXLEN; untouched pages cost no RSS */
#define TXBUF        (64 * 1024)
#define TX_FLUSH_AT  (TXBUF - 256)
#define MAX_DRAINS   16              /* recvmmsg rounds per wake-up before verdicts go out */

struct held { uint32_t id; uint64_t deadline; };

static struct mnl_socket *nl;
static unsigned int portid;
static uint32_t queue_num;
static int hold_mode;
static uint64_t delay_ns = 5000000;

static struct held fifo[FIFO_CAP];
static uint32_t fifo_head, fifo_tail;  /* head: next to release; tail: next free */

static char txbuf[TXBUF] __attribute__((aligned(8)));
static size_t txlen;

static struct {
	uint64_t packets, held, accepted, accepted_now, released, gaps, overflow,
	         malformed, verdict_errors, send_errors, sends, recv_calls, max_held;
} st;
static uint32_t last_id;

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: nfq_ref [--queue N] [--mode accept|hold] [--delay-ms MS]\n"
	    "  --queue N       NFQUEUE number to bind (default 0)\n"
	    "  --mode accept   accept every packet as soon as it is read (default)\n"
	    "  --mode hold     hold DNS AAAA (qtype 28) queries for --delay-ms, accept the rest at once\n"
	    "  --delay-ms MS   hold time in milliseconds, fractions allowed (default 5)\n"
	    "Runs until SIGTERM/SIGINT; then accepts all held packets, unbinds, and prints\n"
	    "counters as one JSON line on stderr. Needs CAP_NET_ADMIN.\n");
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- config messages: sent with NLM_F_ACK, reply checked ---- */

static int cfg_send(struct nlmsghdr *nlh)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	static uint32_t seq = 1;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = ++seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (int tries = 0; tries < 1024; tries++) {
		ssize_t got = mnl_socket_recvfrom(nl, buf, sizeof buf);
		if (got < 0)
			return -1;
		int n = (int)got;
		/* queued packets may arrive before the ack during unbind: skip them */
		for (struct nlmsghdr *r = (struct nlmsghdr *)buf; mnl_nlmsg_ok(r, n);
		     r = mnl_nlmsg_next(r, &n)) {
			if (r->nlmsg_type == NLMSG_ERROR && r->nlmsg_seq == nlh->nlmsg_seq) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(r);
				if (e->error) {
					errno = -e->error;
					return -1;
				}
				return 0;
			}
		}
	}
	errno = ETIMEDOUT;
	return -1;
}

static int bind_queue(void)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	if (cfg_send(nlh) < 0) {
		fprintf(stderr, "nfq_ref: bind queue %u: %s\n", queue_num, strerror(errno));
		return -1;
	}
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, COPY_RANGE);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, QMAXLEN);
	/* FAIL_OPEN: pass packets when the socket buffer is full instead of
	 * dropping. GSO: no checksum/segmentation work before queueing. */
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO));
	if (cfg_send(nlh) < 0) {
		fprintf(stderr, "nfq_ref: configure queue %u: %s\n", queue_num, strerror(errno));
		return -1;
	}
	return 0;
}

static void unbind_queue(void)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
	if (cfg_send(nlh) < 0)
		fprintf(stderr, "nfq_ref: unbind queue %u: %s\n", queue_num, strerror(errno));
}

/* ---- verdicts: concatenated, no acks, one sendto per wake-up ---- */

static void tx_flush(void)
{
	if (!txlen)
		return;
	ssize_t n = mnl_socket_sendto(nl, txbuf, txlen);
	st.sends++;
	if (n < 0)
		st.send_errors++;
	txlen = 0;
}

static inline void verdict_accept(uint32_t id)
{
	if (txlen > TX_FLUSH_AT)
		tx_flush();
	struct nlmsghdr *nlh = nfq_nlmsg_put(txbuf + txlen, NFQNL_MSG_VERDICT, queue_num);
	nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
	txlen += NLMSG_ALIGN(nlh->nlmsg_len);
	st.accepted++;
}

/* ---- DNS: find the first question's QTYPE; -1 if not a DNS query ---- */

static int dns_qtype(const uint8_t *p, size_t len)
{
	size_t off;
	uint8_t proto;

	if (len < 1)
		return -1;
	if ((p[0] >> 4) == 4) {
		if (len < 20)
			return -1;
		off = (size_t)(p[0] & 0x0f) * 4;
		if (off < 20 || (((p[6] << 8) | p[7]) & 0x1fff))  /* later fragment */
			return -1;
		proto = p[9];
	} else if ((p[0] >> 4) == 6) {
		if (len < 40)
			return -1;
		proto = p[6];
		off = 40;
		for (int i = 0; i < 8; i++) {
			if (proto == 0 || proto == 43 || proto == 60) {
				if (off + 8 > len)
					return -1;
				proto = p[off];
				off += ((size_t)p[off + 1] + 1) * 8;
			} else if (proto == 44) {
				if (off + 8 > len || (((p[off + 2] << 8) | p[off + 3]) & 0xfff8))
					return -1;
				proto = p[off];
				off += 8;
			} else if (proto == 51) {
				if (off + 8 > len)
					return -1;
				proto = p[off];
				off += ((size_t)p[off + 1] + 2) * 4;
			} else {
				break;
			}
		}
	} else {
		return -1;
	}
	if (proto != 17)
		return -1;
	off += 8;                                   /* UDP header */
	if (off + 12 > len)
		return -1;
	const uint8_t *d = p + off;
	if ((d[2] & 0x80) || ((d[4] << 8) | d[5]) == 0)   /* response, or no question */
		return -1;
	off += 12;
	for (int labels = 0; labels < 128; labels++) {
		if (off >= len)
			return -1;
		uint8_t l = p[off];
		if (l == 0) {
			off += 1;
			break;
		}
		if ((l & 0xc0) == 0xc0) {               /* pointer (unusual in a query) */
			off += 2;
			break;
		}
		if (l & 0xc0)
			return -1;
		off += 1 + (size_t)l;
	}
	if (off + 2 > len)
		return -1;
	return (p[off] << 8) | p[off + 1];
}

/* ---- held FIFO ---- */

static uint64_t armed;      /* deadline the timerfd is armed for, 0 = disarmed */

static void arm_timer(int tfd)
{
	uint64_t want = fifo_head != fifo_tail ? fifo[fifo_head & (FIFO_CAP - 1)].deadline : 0;
	if (want == armed)
		return;
	struct itimerspec its = { 0 };
	its.it_value.tv_sec = (time_t)(want / 1000000000ull);
	its.it_value.tv_nsec = (long)(want % 1000000000ull);
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
	armed = want;
}

static void release_expired(uint64_t now)
{
	while (fifo_head != fifo_tail) {
		struct held *h = &fifo[fifo_head & (FIFO_CAP - 1)];
		if (h->deadline > now)
			break;
		verdict_accept(h->id);
		st.released++;
		fifo_head++;
	}
}

static void release_all(void)
{
	while (fifo_head != fifo_tail) {
		verdict_accept(fifo[fifo_head & (FIFO_CAP - 1)].id);
		st.released++;
		fifo_head++;
	}
}

/* ---- receive ---- */

static char rxbufs[BATCH][RXBUF] __attribute__((aligned(8)));
static struct mmsghdr msgs[BATCH];
static struct iovec iovs[BATCH];

static void handle_packet(const struct nlmsghdr *nlh, uint64_t rx)
{
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };

	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR]) {
		st.malformed++;
		return;
	}
	const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	uint32_t id = ntohl(ph->packet_id);

	st.packets++;
	if (last_id && id > last_id + 1)
		st.gaps += id - last_id - 1;
	last_id = id;

	if (hold_mode && attr[NFQA_PAYLOAD]) {
		const uint8_t *pl = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		size_t plen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
		if (dns_qtype(pl, plen) == 28) {
			if (fifo_tail - fifo_head >= FIFO_CAP) {
				st.overflow++;
			} else {
				fifo[fifo_tail & (FIFO_CAP - 1)] = (struct held){ id, rx + delay_ns };
				fifo_tail++;
				st.held++;
				if (fifo_tail - fifo_head > st.max_held)
					st.max_held = fifo_tail - fifo_head;
				return;
			}
		}
	}
	verdict_accept(id);
	st.accepted_now++;
}

/* Returns number of datagrams read (0: nothing pending). */
static int drain_once(int fd)
{
	for (int i = 0; i < BATCH; i++)
		msgs[i].msg_hdr.msg_flags = 0;
	int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
	st.recv_calls++;
	if (n <= 0)
		return 0;
	uint64_t rx = now_ns();
	for (int i = 0; i < n; i++) {
		int len = (int)msgs[i].msg_len;
		for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)rxbufs[i];
		     mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				if (e->error)
					st.verdict_errors++;   /* e.g. ENOENT for a stale id */
				continue;
			}
			if (nlh->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
				handle_packet(nlh, rx);
		}
	}
	return n;
}

static void drain(int fd)
{
	for (int r = 0; r < MAX_DRAINS; r++)
		if (drain_once(fd) < BATCH)
			break;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--queue") && v) {
			unsigned long q = strtoul(v, &end, 10);
			if (*end || end == v || q > 65535) {
				fprintf(stderr, "nfq_ref: --queue must be 0..65535\n");
				return 2;
			}
			queue_num = (uint32_t)q;
			i++;
		} else if (!strcmp(a, "--mode") && v) {
			if (!strcmp(v, "accept"))
				hold_mode = 0;
			else if (!strcmp(v, "hold"))
				hold_mode = 1;
			else {
				fprintf(stderr, "nfq_ref: --mode must be accept or hold\n");
				return 2;
			}
			i++;
		} else if (!strcmp(a, "--delay-ms") && v) {
			double d = strtod(v, &end);
			if (*end || end == v || !(d >= 0 && d <= 60000)) {
				fprintf(stderr, "nfq_ref: --delay-ms must be 0..60000\n");
				return 2;
			}
			delay_ns = (uint64_t)(d * 1e6);
			i++;
		} else {
			fprintf(stderr, "nfq_ref: unknown or incomplete argument: %s\n", a);
			usage(stderr);
			return 2;
		}
	}

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("nfq_ref: netlink socket");
		return 1;
	}
	portid = mnl_socket_get_portid(nl);
	int fd = mnl_socket_get_fd(nl);
	int one = 1, rcv = RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	mnl_socket_setsockopt(nl, NETLINK_NO_ENOBUFS, &one, sizeof one);

	if (bind_queue() < 0)
		return 1;

	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || tfd < 0 || ep < 0) {
		perror("nfq_ref: signalfd/timerfd/epoll");
		return 1;
	}
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.fd = fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

	for (int i = 0; i < BATCH; i++) {
		iovs[i].iov_base = rxbufs[i];
		iovs[i].iov_len = RXBUF;
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	fprintf(stderr, "nfq_ref: bound queue %u mode %s delay_ms %.3f\n", queue_num,
	        hold_mode ? "hold" : "accept", (double)delay_ns / 1e6);

	int stop = 0;
	while (!stop) {
		struct epoll_event evs[3];
		int n = epoll_wait(ep, evs, 3, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("nfq_ref: epoll_wait");
			break;
		}
		int rd = 0, tm = 0;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == fd)
				rd = 1;
			else if (evs[i].data.fd == tfd)
				tm = 1;
			else if (evs[i].data.fd == sfd)
				stop = 1;
		}
		if (tm) {
			uint64_t exp;
			if (read(tfd, &exp, sizeof exp) < 0 && errno != EAGAIN)
				perror("nfq_ref: timerfd read");
			armed = 0;     /* fired (or was re-armed): force re-evaluation */
		}
		if (rd)
			drain(fd);
		if (hold_mode) {
			release_expired(now_ns());
			arm_timer(tfd);
		}
		tx_flush();
	}

	/* shutdown: accept everything still readable and everything held, then unbind */
	for (int r = 0; r < 1024 && drain_once(fd) > 0; r++)
		;
	release_all();
	tx_flush();
	unbind_queue();
	mnl_socket_close(nl);

	fprintf(stderr,
	        "{\"packets\":%" PRIu64 ",\"held\":%" PRIu64 ",\"accepted\":%" PRIu64
	        ",\"accepted_now\":%" PRIu64 ",\"released\":%" PRIu64 ",\"max_held\":%" PRIu64
	        ",\"gaps\":%" PRIu64 ",\"overflow\":%" PRIu64 ",\"malformed\":%" PRIu64
	        ",\"verdict_errors\":%" PRIu64 ",\"send_errors\":%" PRIu64
	        ",\"sends\":%" PRIu64 ",\"recv_calls\":%" PRIu64 "}\n",
	        st.packets, st.held, st.accepted, st.accepted_now, st.released, st.max_held,
	        st.gaps, st.overflow, st.malformed, st.verdict_errors, st.send_errors,
	        st.sends, st.recv_calls);
	return 0;
}
