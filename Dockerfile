# syntax=docker/dockerfile:1
#
# Gatehouse container image: `docker build -t gatehouse .` (docs/deployment.md "Container image").
#
# Two stages: `build` compiles the TypeScript with every dependency; the runtime stage gets the compiled
# gateway, the production dependencies only, no npm, no sources, no secrets, and runs as an unprivileged
# numeric user on a read-only root filesystem (nothing is written at run time: logs and audit go to stdout,
# secrets and configuration are mounted).
#
# Base image: Node.js 24 LTS ("Krypton") on Alpine, pinned by exact version AND digest, so a rebuild never
# silently changes the runtime. The digest is the multi-platform index of `node:24.21.0-alpine3.24` as
# recorded in public references (this repository's machines have no Docker to check it): before a release,
# confirm it with `docker buildx imagetools inspect node:24.21.0-alpine3.24` — a digest that does not match
# makes the pull fail, it never substitutes another image. Bump version and digest together.
# (The project's CI runs on Node 20.19+ — `engines` in package.json; the code uses nothing newer.)

# ─── build: compile with all dependencies ─────────────────────────────────────────────────────────────────
FROM node:24.21.0-alpine3.24@sha256:ebfe2f90462722a7a4de65e91990e97fe0d401c70e0e762c5b53302f905ec1c1 AS build
WORKDIR /build
# The lock file first, so the dependency layer is cached until it changes. No install scripts are needed to
# compile (tsc is plain JavaScript); refusing them keeps a compromised package from running code here.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY schemas ./schemas
COPY src ./src
# tsconfig.build.json also names examples/, bench/ and scripts/, which are not copied: only the gateway is built.
RUN npm run build && test -f dist/src/main.js && test -f dist/schemas/gatehouse.schema.json

# ─── runtime ─────────────────────────────────────────────────────────────────────────────────────────────
FROM node:24.21.0-alpine3.24@sha256:ebfe2f90462722a7a4de65e91990e97fe0d401c70e0e762c5b53302f905ec1c1 AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Production dependencies only (no TypeScript, test servers, vitest...), from the same lock file. Then npm,
# npx, corepack and yarn are removed: the gateway never runs them, and an attacker inside gets fewer tools.
# An image that needs stdio upstream servers installs them in its own build stage and copies them in.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /root/.npm /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
# The compiled gateway and the schemas it imports (dist/src/config/load.js reads ../../schemas/*.json).
# Files stay owned by root: the gateway's user can read them, not change them.
COPY --from=build /build/dist/src ./dist/src
COPY --from=build /build/dist/schemas ./dist/schemas

# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd lookup; not the image's `node` (1000).
USER 10001:10001

# 8080: the MCP endpoint, /healthz and /readyz (server.port); 9464: Prometheus metrics, when telemetry
# metrics are enabled.
EXPOSE 8080 9464

# Liveness of the process as Docker sees it (Kubernetes uses its own probes). No curl or shell needed: Node's
# fetch. Set GATEHOUSE_HEALTHCHECK_URL when server.port differs or the gateway serves TLS itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.GATEHOUSE_HEALTHCHECK_URL || 'http://127.0.0.1:8080/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The configuration, policies and secrets are mounted (see docs/deployment.md "Container image"); nothing is baked in.
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["start", "--config", "/etc/gatehouse/gatehouse.yaml"]
