// Test-only LD_PRELOAD shim (test/native/queue.ts): sendto() on a netlink socket fails with ENOBUFS
// while the file named by $DNSS_FAIL_SENDTO exists, so a test can make the data plane's verdict
// sends keep failing on a real queue. Every other sendto passes through. Never part of the product.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* to, socklen_t tolen) {
  static ssize_t (*real)(int, const void*, size_t, int, const struct sockaddr*, socklen_t);
  if (!real)
    real = (ssize_t(*)(int, const void*, size_t, int, const struct sockaddr*, socklen_t))dlsym(RTLD_NEXT,
                                                                                               "sendto");
  const char* flag = getenv("DNSS_FAIL_SENDTO");
  if (flag && access(flag, F_OK) == 0) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr*)&ss, &sl) == 0 && ss.ss_family == AF_NETLINK) {
      errno = ENOBUFS;
      return -1;
    }
  }
  return real(fd, buf, len, flags, to, tolen);
}
