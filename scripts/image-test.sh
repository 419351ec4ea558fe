#!/usr/bin/env bash
# Builds the container image for one architecture from this checkout with podman and runs
# test/integration/image.ts against its root filesystem (chroot inside a lab network namespace: no
# container runtime needed at run time; an arm64 image runs under qemu-user through binfmt_misc).
#   usage: image-test.sh [--arch amd64|arm64] [--export DIR] [tap args...]
# The base image debian:trixie-slim is made locally with debootstrap when podman does not have it yet
# (for arm64, localhost/debian:trixie-slim-arm64, debootstrapped through qemu-user). Caches nothing
# outside temporary directories except podman's own storage (base images, build layers).
#   env: DNS_SHAPER_IMAGE_BASE_REBUILD=1  debootstrap the base again
#        DNS_SHAPER_IMAGE_NO_CACHE=1       build without podman's layer cache
#        DEBIAN_MIRROR=URL                 mirror for debootstrap (default: the one apt uses here)
# With --export DIR it only builds and leaves DIR/rootfs, DIR/image-inspect.json and DIR/sbom.cdx.json
# (the SBOM beside the image) for `npm test`, which then runs test/integration/image.ts with
# DNS_SHAPER_IMAGE_ROOTFS/_CONFIG pointing there.
# Needs root, podman, debootstrap, and for a foreign architecture qemu-user-static with binfmt_misc
# (scripts/system-deps.sh installs them), and network access to the Debian mirror and the npm registry.
#
# How the arm64 image is built on an amd64 machine (Dockerfile): cross-compiled, not emulated. The build
# stage (apt, npm, tsc, node-gyp, the SBOM) runs natively and compiles the addon with
# g++-aarch64-linux-gnu; only apt-get in the target's rootfs stage, the loader that lists libraries and
# the final `dns-shaper version` run under qemu-user. Emulating the whole build was the other choice:
# on the 2 shared cores this was made on, debootstrap took 43 s natively and 16.5 min through qemu (23
# times), so tsc, npm and g++ emulated would not finish within CI's 15 minutes. Measured times are in
# docs/deploy.md, "Build the image".
set -euo pipefail
cd "$(dirname "$0")/.."

host_arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case $host_arch in x86_64) host_arch=amd64 ;; aarch64) host_arch=arm64 ;; esac
arch=$host_arch
export_dir=''
while [ $# -gt 0 ]; do
  case $1 in
    --arch) arch=${2:?usage: image-test.sh --arch amd64|arm64}; shift 2 ;;
    --export) export_dir=${2:?usage: image-test.sh --export DIR}; shift 2 ;;
    *) break ;;
  esac
done
case $arch in
  amd64) qemu_name=qemu-x86_64 ;;
  arm64) qemu_name=qemu-aarch64 ;;
  *) echo "image-test: --arch $arch: amd64 or arm64" >&2; exit 2 ;;
esac
IMAGE=localhost/dns-shaper:test-$arch
BASE=debian:trixie-slim
runtime_base=$BASE
[ "$arch" = "$host_arch" ] || runtime_base=$BASE-$arch
started=$(date +%s)
log() { printf 'image-test[%s]: %s (%ss)\n' "$arch" "$*" "$(($(date +%s) - started))" >&2; }

[ "$(id -u)" = 0 ] || { echo 'image-test: needs root (debootstrap, podman, network namespaces)' >&2; exit 1; }
for p in podman debootstrap chroot capsh; do
  command -v "$p" >/dev/null || { echo "image-test: $p missing (run scripts/system-deps.sh)" >&2; exit 1; }
done

# A foreign architecture runs through binfmt_misc and qemu-user (the rootfs stage, the build's last
# check, and the test). Debian's qemu-user-static registers its interpreters with the F flag (opened at
# registration), so they work inside a chroot without a copy there.
if [ "$arch" != "$host_arch" ]; then
  binfmt=/proc/sys/fs/binfmt_misc
  [ -e "$binfmt/status" ] || mount -t binfmt_misc binfmt_misc "$binfmt" \
    || { echo "image-test: cannot mount binfmt_misc on $binfmt" >&2; exit 1; }
  if [ ! -e "$binfmt/$qemu_name" ] && command -v update-binfmts >/dev/null; then
    update-binfmts --enable "$qemu_name" >/dev/null 2>&1 || true
  fi
  grep -qx enabled "$binfmt/$qemu_name" 2>/dev/null \
    || { echo "image-test: no $qemu_name in binfmt_misc: apt-get install qemu-user-static binfmt-support (scripts/system-deps.sh), then update-binfmts --enable $qemu_name" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/dnss-image.XXXXXX)
container=''
cleanup() {
  [ -n "$container" ] && podman rm -f "$container" >/dev/null 2>&1 || true
  # Nothing may be mounted below $work (the test mounts only in private mount namespaces); refuse to
  # delete through a mount point rather than risk a host directory.
  if grep -q " $work/" /proc/self/mounts; then
    echo "image-test: mounts left under $work, not deleting it:" >&2
    grep " $work/" /proc/self/mounts >&2
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT

# The mirror apt uses on this machine (deb822 or one-line sources), unless given.
mirror=${DEBIAN_MIRROR:-$(grep -rhoE '(URIs:|^deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -oE 'https?://[^ ]+' | head -n1 || true)}
mirror=${mirror:-http://deb.debian.org/debian}

# base IMAGE-NAME ARCH: debootstrap trixie (minbase) for ARCH and import it, unless podman has it.
base() {
  local name=$1 a=$2
  if [ "${DNS_SHAPER_IMAGE_BASE_REBUILD:-}" = 1 ] || ! podman image exists "localhost/$name"; then
    log "debootstrap trixie (minbase, $a) from $mirror"
    debootstrap --arch="$a" --variant=minbase trixie "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    # Like the published slim image: no package lists, no caches.
    rm -rf "$work/base/var/lib/apt/lists/"* "$work/base/var/cache/apt/"*.bin
    tar -C "$work/base" -c . | podman import --arch "$a" - "localhost/$name" >/dev/null
    rm -rf --one-file-system "$work/base"
    log "base image localhost/$name imported"
  fi
}
base "$BASE" "$host_arch"
[ "$runtime_base" = "$BASE" ] || base "$runtime_base" "$arch"

# A TLS-intercepting proxy's CA (if this machine has one in its bundle) reaches npm as a build secret.
build_opts=()
[ "${DNS_SHAPER_IMAGE_NO_CACHE:-}" = 1 ] && build_opts+=(--no-cache)
[ -s /etc/ssl/certs/ca-certificates.crt ] && build_opts+=(--secret id=npm_cafile,src=/etc/ssl/certs/ca-certificates.crt)
# OCI labels: the version from package.json, the commit (marked -dirty when the tree has changes that
# the image contains but no commit does), the build time, the source repository if the clone has one.
version=$(node -p 'require("./package.json").version')
revision=$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && ! git diff --quiet HEAD -- Dockerfile package.json package-lock.json binding.gyp native src tsconfig.json tsconfig.build.json deploy/image 2>/dev/null; then
  revision="$revision-dirty"
fi
source_url=$(git remote get-url origin 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# The same values as --label too: buildah 1.28 (Debian 12's podman) reuses a cached LABEL layer even
# when the build args it expands have changed, which left a stale revision on the image.
log "podman build $IMAGE (platform linux/$arch, runtime base localhost/$runtime_base)"
build_started=$(date +%s)
# BUILDPLATFORM and BUILDARCH given explicitly: buildah 1.28 (Debian 12's podman) does not set them,
# as BuildKit and newer podman do.
podman build --isolation chroot --pull=never --platform "linux/$arch" "${build_opts[@]}" \
  --build-arg "BUILDPLATFORM=linux/$host_arch" --build-arg "BUILDARCH=$host_arch" \
  --build-arg "RUNTIME_BASE=localhost/$runtime_base" --build-arg "BASE=localhost/$BASE" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source_url" \
  --build-arg "CREATED=$created" \
  --label "org.opencontainers.image.version=$version" --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.source=$source_url" --label "org.opencontainers.image.created=$created" \
  -t "$IMAGE" . >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; exit 1; }
log "built in $(($(date +%s) - build_started))s: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"

podman image inspect "$IMAGE" >"$work/image-inspect.json"
# --network none: creating a container must not make podman set up bridge networking (firewall
# rules, forwarding sysctls) in the host's namespace; it is only exported, never started.
container=$(podman create --network none "$IMAGE")
out=${export_dir:-$work}
mkdir -p "$out/rootfs"
podman export "$container" | tar -C "$out/rootfs" -x
podman rm "$container" >/dev/null
container=''
# The SBOM beside the image too, for whatever archives build artefacts.
cp "$out/rootfs/usr/share/doc/dns-shaper/sbom.cdx.json" "$out/sbom.cdx.json"
[ -n "$export_dir" ] && cp "$work/image-inspect.json" "$out/image-inspect.json"
log "rootfs exported to $out/rootfs ($(du -s --apparent-size --block-size=1 "$out/rootfs" | awk '{printf "%.1f MB", $1/1e6}'))"
[ -n "$export_dir" ] && exit 0

status=0
DNS_SHAPER_IMAGE_ROOTFS="$work/rootfs" DNS_SHAPER_IMAGE_CONFIG="$work/image-inspect.json" \
  npx tap test/integration/image.ts --disable-coverage --timeout=1200 "$@" || status=$?
log "done (tap exit $status)"
exit "$status"
