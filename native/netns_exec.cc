// dns-shaper-netns: runs a program in a new, empty network namespace (unshare(CLONE_NEWNET), then
// exec). The race probe starts each of its namespace agents through it, so the product needs neither
// util-linux's unshare nor `ip netns` (which mounts, and container runtimes refuse mounts). The
// namespace lives as long as the program. It does nothing else: no mount, no other namespace.
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: dns-shaper-netns PROGRAM [ARG...]: runs PROGRAM in a new network namespace\n");
    return 2;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    int e = errno;
    fprintf(stderr, "dns-shaper-netns: unshare(CLONE_NEWNET): %s%s\n", strerror(e),
            e == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
    return 126;
  }
  execvp(argv[1], argv + 1);
  fprintf(stderr, "dns-shaper-netns: %s: %s\n", argv[1], strerror(errno));
  return 127;
}
