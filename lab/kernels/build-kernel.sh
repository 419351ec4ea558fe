#!/usr/bin/env bash
# Builds the kernel-lab kernel: Debian bullseye's linux-source-5.10 + the lab switch patch + lab config fragment.
# Caches source and bzImage OUTSIDE the checkout; idempotent. Must not touch the system's apt sources or
# install anything: bullseye is reached only through a private apt config that lives in the cache directory.
#
# Usage: lab/kernels/build-kernel.sh [--force]     (prints the bzImage path on its last line)
# Env:   DNS_SHAPER_LAB_CACHE (default /var/cache/dns-shaper-lab), JOBS (default nproc), NICE (default 10)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${DNS_SHAPER_LAB_CACHE:-/var/cache/dns-shaper-lab}
jobs=${JOBS:-$(nproc)}
nice_n=${NICE:-10}
force=0
[[ ${1:-} == --force ]] && force=1

patch_file=$here/nf-conntrack-lab-pre56-clash.patch
fragment=$here/lab.config
# The output name carries a hash of the kernel's inputs (patch, fragment), so editing either rebuilds.
inputs_hash=$(cat "$patch_file" "$fragment" | sha256sum | cut -c1-12)
out=$cache/bzImage-5.10-lab-$inputs_hash
if [[ -s $out && $force == 0 ]]; then
  ln -sfn "$(basename "$out")" "$cache/bzImage"
  echo "$out"
  exit 0
fi

for tool in gcc make flex bison bc xz dpkg-deb apt-get; do
  command -v "$tool" >/dev/null || {
    echo "build-kernel: '$tool' is missing; run scripts/system-deps.sh --kernel-lab (as root) first" >&2
    exit 1
  }
done
[[ -e /usr/include/libelf.h ]] || {
  echo "build-kernel: libelf-dev is missing; run scripts/system-deps.sh --kernel-lab (as root) first" >&2
  exit 1
}

mkdir -p "$cache"
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/etc/preferences.d"
# Private apt: its own sources.list, lists and cache; the system's sources.list(.d) are never read or written.
cat >"$apt_dir/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bullseye-security main
SRC
apt_opts=(
  -o "Dir::Etc::sourcelist=$apt_dir/sources.list"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::Etc::preferencesparts=$apt_dir/etc/preferences.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "APT::Sandbox::User=root"
)

deb=$(ls "$cache"/linux-source-5.10_*.deb 2>/dev/null | sort -V | tail -1 || true)
if [[ -z $deb ]]; then
  echo "build-kernel: fetching linux-source-5.10 from bullseye (private apt config in $apt_dir)" >&2
  apt-get "${apt_opts[@]}" -qq update
  (cd "$cache" && apt-get "${apt_opts[@]}" download linux-source-5.10)
  deb=$(ls "$cache"/linux-source-5.10_*.deb | sort -V | tail -1)
fi
version=$(dpkg-deb -f "$deb" Version)
echo "build-kernel: linux-source-5.10 $version ($deb)" >&2

tarball=$cache/linux-source-5.10-$version.tar.xz
if [[ ! -s $tarball ]]; then
  dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-5.10.tar.xz >"$tarball.tmp"
  mv "$tarball.tmp" "$tarball"
fi

# A fresh tree every build, so the patch always applies to pristine source.
src=$cache/build/linux-source-5.10
rm -rf "$cache/build"
mkdir -p "$cache/build"
tar -xJf "$tarball" -C "$cache/build"
cd "$src"
patch -p1 --forward <"$patch_file"

make -s ARCH=x86_64 defconfig
scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
make -s ARCH=x86_64 olddefconfig
# Refuse to build a kernel the lab cannot use: every =y line of the fragment must have survived olddefconfig.
missing=0
while IFS= read -r line; do
  [[ $line =~ ^(CONFIG_[A-Z0-9_]+)=y$ ]] || continue
  grep -qx "$line" .config || { echo "build-kernel: $line did not survive olddefconfig" >&2; missing=1; }
done <"$fragment"
[[ $missing == 0 ]] || exit 1

echo "build-kernel: building bzImage with $jobs jobs (nice $nice_n); log in $cache/build.log" >&2
nice -n "$nice_n" make ARCH=x86_64 -j"$jobs" bzImage >"$cache/build.log" 2>&1 || {
  tail -40 "$cache/build.log" >&2
  echo "build-kernel: make bzImage failed; full log in $cache/build.log" >&2
  exit 1
}
cp arch/x86/boot/bzImage "$out.tmp"
cp .config "$out.config"
mv "$out.tmp" "$out"
ln -sfn "$(basename "$out")" "$cache/bzImage"
echo "$out"
