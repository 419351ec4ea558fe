# dns-shaper container image: the daemon (`dns-shaper run`) with its native NFQUEUE addon and both
# iptables backends. Build: `podman build -t dns-shaper .` (or docker). Another Debian-based base
# (same nodejs ABI in build and runtime stage) can be chosen with --build-arg BASE=...
ARG BASE=debian:trixie-slim

# ---- build: compile the addon (node-gyp) and the TypeScript, then keep production deps only ----
FROM ${BASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      nodejs npm node-gyp libnode-dev g++ make python3 pkg-config libmnl-dev libnetfilter-queue-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off: the addon and dist/ are built explicitly below, against the base image's node headers.
# Behind a TLS-intercepting proxy, hand its CA bundle in as a build secret (never stored in a layer):
#   podman build --secret id=npm_cafile,src=/etc/ssl/certs/ca-certificates.crt .
RUN --mount=type=secret,id=npm_cafile \
    if [ -s /run/secrets/npm_cafile ]; then export npm_config_cafile=/run/secrets/npm_cafile; fi \
 && npm ci --ignore-scripts --no-audit --no-fund
COPY binding.gyp ./
COPY native/ native/
RUN node-gyp rebuild \
 && test -f build/Release/nfqueue.node
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN ./node_modules/.bin/tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -depth -type d -empty -delete \
 && mkdir -p /out/app/build/Release \
 && cp -r dist node_modules package.json /out/app/ \
 && cp build/Release/nfqueue.node /out/app/build/Release/ \
 && chmod 0755 /out/app/dist/cli.js

# ---- runtime: node, the app, iptables (nft and legacy), iproute2, the netfilter libraries ----
FROM ${BASE}
ARG DEBIAN_FRONTEND=noninteractive
# iptables ships iptables-nft and iptables-legacy (the daemon picks the node's backend the way
# kube-proxy's iptables-wrapper does); iproute2 is for `dns-shaper check` (ip, tc).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      nodejs iptables iproute2 libmnl0 libnetfilter-queue1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
# Root-owned and world-readable: runs as root with only CAP_NET_ADMIN/CAP_NET_RAW granted by the runtime,
# on a read-only root filesystem (nothing is written at run time apart from /run/xtables.lock).
COPY --from=build /out/app /app
RUN ln -s /app/dist/cli.js /usr/local/bin/dns-shaper \
 && dns-shaper version
ENV NODE_ENV=production
# Metrics, /healthz and /readyz (the DaemonSet sets --metrics-listen to the node address).
EXPOSE 9363
ENTRYPOINT ["/usr/local/bin/dns-shaper"]
CMD ["run"]
