#!/usr/bin/env bash
# Image build step, run in a Debian stage of the target architecture with iptables, nftables and
# iproute2 installed: copies into OUT only what the daemon and `dns-shaper check` execute (iptables
# and ip6tables, nft and legacy, with save/restore; nft; ip; tc; env for the CLI's shebang), the
# xtables extensions iptables loads at run time, and every shared library those and the given ELF
# files (the node binary, the addon) link, found by asking the dynamic loader. It must not copy a
# shell, a package manager or anything "just in case": each extra file is pulled on every node.
#   usage: collect-rootfs.sh OUT [ELF...]
set -euo pipefail
out=${1:?usage: collect-rootfs.sh OUT [ELF...]}
shift
mkdir -p "$out"
multiarch=$(basename "$(dirname "$(realpath /usr/lib/*-linux-gnu/libc.so.6)")")
loader=$(echo /usr/lib/"$multiarch"/ld-linux-*.so.*)
[ -x "$loader" ] || { echo "collect-rootfs: no dynamic loader in /usr/lib/$multiarch" >&2; exit 1; }

# put PATH: copy PATH (its directory canonicalised, so /lib/... lands in usr/lib/... on a merged-/usr
# system) and, when it is a symlink, what it points to, link by link.
put() {
  local dir name path target
  dir=$(realpath "$(dirname "$1")")
  name=$(basename "$1")
  path="$dir/$name"
  [ -e "$out$path" ] || [ -L "$out$path" ] && return 0
  [ -e "$path" ] || [ -L "$path" ] || { echo "collect-rootfs: $1 does not exist" >&2; exit 1; }
  cp -a --parents "$path" "$out"
  if [ -L "$path" ]; then
    target=$(readlink "$path")
    [[ $target == /* ]] || target="$dir/$target"
    put "$target"
  fi
}

# libs ELF...: every library the loader maps for these files (the loader itself included).
libs() {
  local f
  for f in "$@"; do
    # The loader's --list is ldd without the shell script; "not found" means the image would not run.
    if ! "$loader" --list "$f" >"$out.list" 2>&1 || grep -q 'not found' "$out.list"; then
      echo "collect-rootfs: $f cannot be loaded:" >&2
      cat "$out.list" >&2
      exit 1
    fi
    grep -oE '/[^ ]+' "$out.list" | grep -v "^$f\$" || true
  done | sort -u
}

# Programs, by the names dns-shaper runs them (src/rules/backend.ts, src/check/probes.ts).
programs=()
for p in iptables ip6tables; do
  for b in nft legacy; do
    programs+=("$p-$b" "$p-$b-save" "$p-$b-restore")
  done
done
programs+=(nft ip tc env)
elves=()
for p in "${programs[@]}"; do
  path=$(command -v "$p") || { echo "collect-rootfs: $p is not installed in the build stage" >&2; exit 1; }
  put "$path"
  elves+=("$(realpath "$path")")
done
# The generic names `check` falls back to, pointing where Debian's alternatives point by default (nft),
# without /etc/alternatives.
for p in iptables ip6tables; do
  for s in '' -save -restore; do
    ln -sf "$p-nft$s" "$out/usr/sbin/$p$s"
  done
done
# xtables extensions (NFQUEUE, udp, comment, bpf, u32, ...): dlopen()ed by iptables, so no --list shows them.
put "/usr/lib/$multiarch/xtables"
elves+=("/usr/lib/$multiarch"/xtables/*.so)
elves+=("$@")
while read -r lib; do put "$lib"; done < <(libs "${elves[@]}")
rm -f "$out.list"

# The merged-/usr top-level links (the ELF interpreter is /lib64/... or /lib/...), and the directories
# a container runtime mounts over or iptables and node write to.
for l in bin sbin lib lib64; do
  [ -L "/$l" ] && cp -a "/$l" "$out/"
done
mkdir -p "$out"/{dev,proc,sys,etc,run,tmp,var}
chmod 1777 "$out/tmp"
ln -s ../run "$out/var/run"
touch "$out/etc/resolv.conf" "$out/etc/hosts" "$out/etc/hostname"
# The loader's cache for the libraries copied (ldconfig writes it under OUT, reading only OUT).
cp /etc/ld.so.conf "$out/etc/"
cp -a /etc/ld.so.conf.d "$out/etc/"
ldconfig -r "$out"
# Names for uid/gid 0, which iptables and ip print in a few messages.
printf 'root:x:0:0:root:/:/nonexistent\n' >"$out/etc/passwd"
printf 'root:x:0:\n' >"$out/etc/group"
