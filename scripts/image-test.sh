#!/usr/bin/env bash
# Builds the container image from this checkout with podman and runs test/integration/image.ts against
# its root filesystem (chroot inside a lab network namespace: no container runtime needed at run time).
# The base image debian:trixie-slim is made locally with debootstrap when podman does not have it yet.
# Caches nothing outside temporary directories except podman's own storage (base image, build layers).
#   env: DNS_SHAPER_IMAGE_BASE_REBUILD=1  debootstrap the base again
#        DNS_SHAPER_IMAGE_NO_CACHE=1       build without podman's layer cache
#        DEBIAN_MIRROR=URL                 mirror for debootstrap (default: the one apt uses here)
# With --export DIR it only builds and leaves DIR/rootfs and DIR/image-config.json for `npm test`
# (which then runs test/integration/image.ts with DNS_SHAPER_IMAGE_ROOTFS/_CONFIG pointing there).
# Needs root, podman, debootstrap (scripts/system-deps.sh installs them) and network access to the
# Debian mirror and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

export_dir=''
if [ "${1:-}" = --export ]; then
  export_dir=${2:?usage: image-test.sh --export DIR}
  shift 2
fi
IMAGE=localhost/dns-shaper:test
BASE=debian:trixie-slim
started=$(date +%s)
log() { printf 'image-test: %s (%ss)\n' "$*" "$(( $(date +%s) - started ))" >&2; }

[ "$(id -u)" = 0 ] || { echo 'image-test: needs root (debootstrap, podman, network namespaces)' >&2; exit 1; }
for p in podman debootstrap chroot; do
  command -v "$p" >/dev/null || { echo "image-test: $p missing (apt-get install -y podman debootstrap)" >&2; exit 1; }
done

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

if [ "${DNS_SHAPER_IMAGE_BASE_REBUILD:-}" = 1 ] || ! podman image exists "$BASE"; then
  log "debootstrap trixie (minbase) from $mirror"
  debootstrap --variant=minbase trixie "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  # Like the published slim image: no package lists, no caches.
  rm -rf "$work/base/var/lib/apt/lists/"* "$work/base/var/cache/apt/"*.bin
  tar -C "$work/base" -c . | podman import - "localhost/$BASE" >/dev/null
  rm -rf --one-file-system "$work/base"
  log "base image localhost/$BASE imported"
fi

# A TLS-intercepting proxy's CA (if this machine has one in its bundle) reaches npm as a build secret.
build_opts=()
[ "${DNS_SHAPER_IMAGE_NO_CACHE:-}" = 1 ] && build_opts+=(--no-cache)
[ -s /etc/ssl/certs/ca-certificates.crt ] && build_opts+=(--secret id=npm_cafile,src=/etc/ssl/certs/ca-certificates.crt)
log "podman build $IMAGE"
podman build --isolation chroot --pull=never "${build_opts[@]}" -t "$IMAGE" . >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; exit 1; }
log "built: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"

podman image inspect --format '{{json .Config}}' "$IMAGE" >"$work/image-config.json"
# --network none: creating a container must not make podman set up bridge networking (firewall
# rules, forwarding sysctls) in the host's namespace; it is only exported, never started.
container=$(podman create --network none "$IMAGE")
out=${export_dir:-$work}
mkdir -p "$out/rootfs"
[ -n "$export_dir" ] && cp "$work/image-config.json" "$out/image-config.json"
podman export "$container" | tar -C "$out/rootfs" -x
podman rm "$container" >/dev/null
container=''
log "rootfs exported to $out/rootfs"
[ -n "$export_dir" ] && exit 0

status=0
DNS_SHAPER_IMAGE_ROOTFS="$work/rootfs" DNS_SHAPER_IMAGE_CONFIG="$work/image-config.json" \
  npx tap test/integration/image.ts --disable-coverage "$@" || status=$?
log "done (tap exit $status)"
exit "$status"
