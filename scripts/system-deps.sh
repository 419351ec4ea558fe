#!/usr/bin/env bash
# Installs the Debian packages dns-shaper needs to build, run and test (run as root).
# Build: g++ make python3 libmnl-dev libnetfilter-queue-dev. Run: iptables iproute2.
# Tests and labs: real DNS peers and tools (unbound, dig, dnsperf, prometheus, musl, clang...).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  g++ make python3 pkg-config libmnl-dev libnetfilter-queue-dev \
  iptables iproute2 kmod procps util-linux libcap2-bin curl ca-certificates \
  unbound dnsutils knot-dnsutils dnsperf conntrack \
  prometheus musl-tools clang clang-format libclang-rt-14-dev podman debootstrap \
  >/dev/null
# Kernel lab (npm run lab:kernels; not CI): QEMU to boot the guest, and what building a 5.10 kernel needs.
if [[ ${1:-} == --kernel-lab ]]; then
  apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 flex bison bc libelf-dev libssl-dev xz-utils >/dev/null
fi
