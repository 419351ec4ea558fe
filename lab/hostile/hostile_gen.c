// hostile_gen: replays crafted IPv4/IPv6 packets (one hex packet per line of a shape file) out of one
// interface with an AF_PACKET socket, so the kernel sends them byte for byte: wrong lengths, bad
// versions, fragments and all. Bounded in packets and seconds; prints one JSON summary on stdout.
// It must not build shapes itself (the test writes them) and must only ever run inside a lab namespace.
//
//   hostile_gen --iface eth0 --dst-mac 02:..:.. --file shapes.txt --count 200000 [--rate PPS] [--max-seconds S]
//
// Shape file: `TAG HEX` per line (TAG: [A-Za-z0-9_:.-]{1,63}), `#` comments and blank lines ignored.
// Packets are sent round-robin over the file; each one leaves as an Ethernet frame to --dst-mac with
// EtherType IPv6 when its first nibble is 6, IPv4 otherwise.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SHAPES 4096
#define MAX_PKT 9000
#define MAX_TAGS 64
#define MAX_COUNT 10000000UL
#define MAX_SECONDS 3600.0

struct shape {
  char tag[64];
  int tag_idx;
  uint16_t len;
  uint8_t* data;
};

static struct shape shapes[MAX_SHAPES];
static size_t nshapes;
static char tags[MAX_TAGS][64];
static unsigned long tag_sent[MAX_TAGS], tag_err[MAX_TAGS];
static int ntags;

static void usage(FILE* f) {
  fprintf(f,
          "usage: hostile_gen --iface IF --dst-mac MAC --file SHAPES [--count N] [--rate PPS] [--max-seconds S]\n"
          "  --count N        packets to send, round-robin over the file (default: one pass)\n"
          "  --rate PPS       packets per second, 0 = as fast as the socket takes them (default 0)\n"
          "  --max-seconds S  stop after S seconds whatever the count (default 20)\n"
          "prints {\"sent\":..,\"errors\":..,\"byTag\":{..},\"durationMs\":..}\n");
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int tag_index(const char* tag) {
  for (int i = 0; i < ntags; i++)
    if (strcmp(tags[i], tag) == 0) return i;
  if (ntags == MAX_TAGS) return -1;
  snprintf(tags[ntags], sizeof tags[ntags], "%s", tag);
  return ntags++;
}

static int load(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "hostile_gen: %s: %s\n", path, strerror(errno));
    return -1;
  }
  char* line = NULL;
  size_t cap = 0;
  ssize_t n;
  int lineno = 0;
  while ((n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    char* p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '#' || *p == '\n' || *p == '\0') continue;
    char* sp = strpbrk(p, " \t");
    if (!sp || sp - p >= 64) {
      fprintf(stderr, "hostile_gen: %s:%d: expected `TAG HEX`\n", path, lineno);
      goto bad;
    }
    if (nshapes == MAX_SHAPES) {
      fprintf(stderr, "hostile_gen: %s: more than %d shapes\n", path, MAX_SHAPES);
      goto bad;
    }
    struct shape* s = &shapes[nshapes];
    memcpy(s->tag, p, (size_t)(sp - p));
    s->tag[sp - p] = '\0';
    for (char* c = s->tag; *c; c++) {
      if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("_:.-", *c))) {
        fprintf(stderr, "hostile_gen: %s:%d: bad tag character\n", path, lineno);
        goto bad;
      }
    }
    s->tag_idx = tag_index(s->tag);
    if (s->tag_idx < 0) {
      fprintf(stderr, "hostile_gen: %s: more than %d tags\n", path, MAX_TAGS);
      goto bad;
    }
    s->data = malloc(MAX_PKT);
    if (!s->data) goto bad;
    size_t len = 0;
    int hi = -1;
    for (char* c = sp; *c && *c != '\n' && *c != '#'; c++) {
      if (*c == ' ' || *c == '\t' || *c == '\r') continue;
      int v = hexval(*c);
      if (v < 0 || (hi < 0 && len == MAX_PKT)) {
        fprintf(stderr, "hostile_gen: %s:%d: bad hex or packet over %d bytes\n", path, lineno, MAX_PKT);
        goto bad;
      }
      if (hi < 0) {
        hi = v;
      } else {
        s->data[len++] = (uint8_t)(hi << 4 | v);
        hi = -1;
      }
    }
    if (hi >= 0) {
      fprintf(stderr, "hostile_gen: %s:%d: odd number of hex digits\n", path, lineno);
      goto bad;
    }
    s->len = (uint16_t)len;
    nshapes++;
  }
  free(line);
  fclose(f);
  if (nshapes == 0) {
    fprintf(stderr, "hostile_gen: %s: no shapes\n", path);
    return -1;
  }
  return 0;
bad:
  free(line);
  fclose(f);
  return -1;
}

static int parse_mac(const char* s, uint8_t mac[6]) {
  unsigned v[6];
  char tail;
  if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6) return -1;
  for (int i = 0; i < 6; i++) {
    if (v[i] > 255) return -1;
    mac[i] = (uint8_t)v[i];
  }
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void json_str(const char* s) {
  putchar('"');
  for (; *s; s++) putchar(*s);  // tags are restricted to [A-Za-z0-9_:.-]
  putchar('"');
}

int main(int argc, char** argv) {
  const char *iface = NULL, *mac_s = NULL, *file = NULL;
  unsigned long count = 0;
  double rate = 0, max_seconds = 20;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= argc || strncmp(a, "--", 2) != 0) {
      fprintf(stderr, "hostile_gen: unknown or incomplete flag %s\n", a);
      usage(stderr);
      return 2;
    }
    const char* v = argv[++i];
    char* end = NULL;
    if (!strcmp(a, "--iface")) {
      iface = v;
    } else if (!strcmp(a, "--dst-mac")) {
      mac_s = v;
    } else if (!strcmp(a, "--file")) {
      file = v;
    } else if (!strcmp(a, "--count")) {
      count = strtoul(v, &end, 10);
      if (*end || count == 0 || count > MAX_COUNT) {
        fprintf(stderr, "hostile_gen: --count: expected 1..%lu, got %s\n", MAX_COUNT, v);
        return 2;
      }
    } else if (!strcmp(a, "--rate")) {
      rate = strtod(v, &end);
      if (*end || rate < 0 || rate > 1e7) {
        fprintf(stderr, "hostile_gen: --rate: expected 0..10000000, got %s\n", v);
        return 2;
      }
    } else if (!strcmp(a, "--max-seconds")) {
      max_seconds = strtod(v, &end);
      if (*end || !(max_seconds > 0 && max_seconds <= MAX_SECONDS)) {
        fprintf(stderr, "hostile_gen: --max-seconds: expected (0, %.0f], got %s\n", MAX_SECONDS, v);
        return 2;
      }
    } else {
      fprintf(stderr, "hostile_gen: unknown flag %s\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!iface || !mac_s || !file) {
    fprintf(stderr, "hostile_gen: --iface, --dst-mac and --file are required\n");
    usage(stderr);
    return 2;
  }
  uint8_t mac[6];
  if (parse_mac(mac_s, mac) < 0) {
    fprintf(stderr, "hostile_gen: --dst-mac: expected aa:bb:cc:dd:ee:ff, got %s\n", mac_s);
    return 2;
  }
  if (load(file) < 0) return 1;
  if (count == 0) count = nshapes;

  unsigned ifindex = if_nametoindex(iface);
  if (!ifindex) {
    fprintf(stderr, "hostile_gen: --iface %s: %s\n", iface, strerror(errno));
    return 1;
  }
  // SOCK_DGRAM: the kernel writes the Ethernet header from sll_addr; the rest goes out untouched.
  int fd = socket(AF_PACKET, SOCK_DGRAM, 0);
  if (fd < 0) {
    fprintf(stderr, "hostile_gen: socket(AF_PACKET): %s (needs CAP_NET_RAW)\n", strerror(errno));
    return 1;
  }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  struct sockaddr_ll to4 = {0}, to6;
  to4.sll_family = AF_PACKET;
  to4.sll_ifindex = (int)ifindex;
  to4.sll_halen = 6;
  memcpy(to4.sll_addr, mac, 6);
  to6 = to4;
  to4.sll_protocol = htons(ETH_P_IP);
  to6.sll_protocol = htons(ETH_P_IPV6);

  unsigned long sent = 0, errors = 0, enobufs = 0;
  int last_errno = 0;
  double start = now_s(), deadline = start + max_seconds;
  int timed_out = 0;
  for (unsigned long i = 0; i < count; i++) {
    if ((i & 63) == 0 || rate > 0) {
      double t = now_s();
      if (t >= deadline) {
        timed_out = 1;
        break;
      }
      if (rate > 0) {
        // Pace against the start time, so the average rate holds even when single sleeps overshoot.
        double due = start + (double)i / rate;
        if (due > t + 0.0005) {
          struct timespec ts = {0, (long)((due - t) * 1e9)};
          nanosleep(&ts, NULL);
        }
      }
    }
    const struct shape* s = &shapes[i % nshapes];
    const struct sockaddr_ll* to = (s->len > 0 && s->data[0] >> 4 == 6) ? &to6 : &to4;
    ssize_t r;
    int tries = 0;
    do {
      r = sendto(fd, s->data, s->len, 0, (const struct sockaddr*)to, sizeof *to);
      // A full device queue is back-pressure, not a verdict on the shape: wait a little and retry.
      if (r < 0 && errno == ENOBUFS) {
        enobufs++;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
      }
    } while (r < 0 && errno == ENOBUFS && ++tries < 50);
    if (r < 0) {
      errors++;
      tag_err[s->tag_idx]++;
      last_errno = errno;
    } else {
      sent++;
      tag_sent[s->tag_idx]++;
    }
  }
  double dur = now_s() - start;
  close(fd);
  printf("{\"sent\":%lu,\"errors\":%lu,\"enobufsRetries\":%lu,\"lastError\":", sent, errors, enobufs);
  json_str(last_errno ? strerror(last_errno) : "");
  printf(",\"timedOut\":%s,\"durationMs\":%.0f,\"pps\":%.0f,\"shapes\":%zu,\"byTag\":{", timed_out ? "true" : "false",
         dur * 1000, dur > 0 ? (double)sent / dur : 0, nshapes);
  for (int i = 0; i < ntags; i++) {
    if (i) putchar(',');
    json_str(tags[i]);
    printf(":{\"sent\":%lu,\"errors\":%lu}", tag_sent[i], tag_err[i]);
  }
  printf("}}\n");
  return 0;
}
