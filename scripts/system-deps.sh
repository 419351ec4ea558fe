#!/usr/bin/env bash
# Installs the Debian packages dns-shaper needs to build, run and test (run as root).
# Build: g++ make python3 libmnl-dev libnetfilter-queue-dev. Run: iptables iproute2.
# Tests and labs: real DNS peers and tools (unbound, dig, dnsperf, nft, prometheus, musl, clang, GNU time...).
# Container images: podman, debootstrap, and qemu-user-static + binfmt-support, which build and run
# the arm64 image on an amd64 machine (scripts/image-test.sh --arch arm64); qemu-system-arm, cpio and
# xz-utils boot that image on an arm64 kernel for its shaped query (harness/arm64-guest).
# Node.js: Debian's nodejs and npm when no node is installed (a fresh Debian 13 has 20, which the
# checkout needs at least); an installed node is left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  g++ make python3 pkg-config libmnl-dev libnetfilter-queue-dev \
  iptables nftables ipvsadm iproute2 kmod procps util-linux libcap2-bin curl ca-certificates time \
  unbound dnsutils knot-dnsutils dnsperf conntrack \
  prometheus musl-tools clang clang-format libclang-rt-14-dev podman debootstrap \
  qemu-user-static binfmt-support qemu-system-arm cpio xz-utils \
  >/dev/null
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "system-deps: node $(node --version) is too old: dns-shaper needs Node.js 20 or newer (Debian 13's nodejs is 20)" >&2
  exit 1
fi
# Kernel lab (npm run lab:kernels; not CI): QEMU to boot the guest, and what building a 5.10 kernel needs.
if [[ ${1:-} == --kernel-lab ]]; then
  apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 flex bison bc libelf-dev libssl-dev xz-utils >/dev/null
fi
