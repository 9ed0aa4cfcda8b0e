# syntax=docker/dockerfile:1
# peergate container image: `docker build -t peergate:0.1.0 .` from the repository root.
# Stage 1 compiles TypeScript and the native signature verifier; stage 2 carries only the
# compiled program, production node_modules and the addon, and runs as a non-root user.
# See docs/install.md ("Container") for what was and was not run.

ARG NODE_IMAGE=node:20-bookworm
ARG NODE_SLIM_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Dependencies first, so the layer is reused while only sources change. The install script
# builds native/ with node-gyp (python3, make and g++ are in the full node image).
COPY package.json package-lock.json ./
COPY native/binding.gyp native/sigverify.c native/memory.cc ./native/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/.bin

FROM ${NODE_SLIM_IMAGE} AS runtime
ENV NODE_ENV=production
# glibc malloc: two arenas rather than up to 8 per core, for the primary too (the workers get it
# by default); docs/operations.md "Reading peergate's memory".
ENV MALLOC_ARENA_MAX=2
WORKDIR /usr/lib/peergate
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/build/Release/sigverify.node ./native/build/Release/sigverify.node
COPY --from=build /src/native/build/Release/memory.node ./native/build/Release/memory.node
COPY bin/peergate.js ./bin/peergate.js
COPY deploy/container/policy.yaml /etc/peergate/policy.yaml
# A fixed numeric uid, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 peergate \
 && useradd --system --uid 10001 --gid peergate --home-dir /var/lib/peergate --shell /usr/sbin/nologin peergate \
 && install -d -o peergate -g peergate -m 0750 /var/lib/peergate
USER 10001:10001
WORKDIR /var/lib/peergate
# SIP (peer side udp/tcp), SIP (core side), ops (metrics, health, admin): the ports of
# deploy/container/policy.yaml.
EXPOSE 5060/udp 5060/tcp 5080/udp 9090/tcp
# Liveness of the process through the ops server (no curl in the slim image: node's fetch).
# 9090 is the policy's ops.port: a mounted policy with another port needs --health-cmd too.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains calls (lifecycle.drain_timeout); give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--max-semi-space-size=8", "--no-memory-reducer", "/usr/lib/peergate/bin/peergate.js"]
CMD ["start", "--policy", "/etc/peergate/policy.yaml"]
