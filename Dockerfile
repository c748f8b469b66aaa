# syntax=docker/dockerfile:1.7
#
# One image per app, from one file: `docker build --target <app> -t modproxy/<app>:0.1.0 .`
# with <app> one of proxy, storage, lathens, crathens (docker-compose.yml builds all four).
#
# - Node.js 26 ("Lithium"), the Active LTS line since 2026-10-28; the repository itself still
#   runs on Node >= 20.19 (package.json engines).
# - Production dependencies only: `npm ci --omit=dev` from the committed lock. The apps are
#   esbuild bundles (dist/apps/<app>/main.js) with npm packages left external, so the runtime
#   needs node_modules but no TypeScript, no sources and no build tools.
# - Non-root (uid 1000, the base image's `node` user) and made for a read-only root file
#   system: everything an app writes goes to a volume (/tmp, GO_WORK_DIR, STORAGE_DIR), see
#   docs/operations.md.
# - The apps that fetch from VCS (proxy for `direct`, lathens for `direct` lists, crathens)
#   carry git, ssh and the go command.
# - Each runs `node --import <instrument.js> <main.js>`: the OpenTelemetry entry first, as
#   everywhere (README, npm start, startAppProcess).
#
# The deployment tests (apps/deploy-tests) parse this file: the stages, every COPY source, the
# user, the base image and the command each target runs.

ARG NODE_IMAGE=node:26.13.0-trixie-slim
ARG GO_IMAGE=golang:1.26.8-trixie

# The go toolchain the VCS images copy (the official build, not Debian's older package).
FROM ${GO_IMAGE} AS go

# Production dependencies, exactly as the lock says; install scripts follow package.json's
# allowScripts (none is allowed: nothing needs one).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Every app bundled the way `npm run build` does it.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json ./
COPY scripts/build-app.mjs ./scripts/
COPY libs ./libs
COPY apps ./apps
RUN for app in proxy storage lathens crathens; do node scripts/build-app.mjs "$app"; done

# What every app image has: node, the production node_modules and the health check. The
# directories volumes are mounted on exist and belong to the app's user, so a new named volume
# (docker and compose copy the image's directory into it) is writable for it.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
RUN mkdir -p /var/lib/modproxy/storage /var/cache/modproxy /var/cache/modproxy-content \
  && chown -R 1000:1000 /var/lib/modproxy /var/cache/modproxy /var/cache/modproxy-content
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY scripts/healthcheck.mjs ./scripts/healthcheck.mjs
USER 1000:1000

# The runtime plus what fetching from VCS needs. GOTELEMETRY=off: the go command writes nothing
# to a read-only home. (GOTOOLCHAIN needs no setting: the apps run every go command with
# GOTOOLCHAIN=local, so none downloads another toolchain.)
FROM runtime AS runtime-vcs
USER root
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
  && rm -rf /var/lib/apt/lists/*
COPY --from=go /usr/local/go /usr/local/go
ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  GOTELEMETRY=off
USER 1000:1000

FROM runtime-vcs AS proxy
COPY --from=build /src/dist/apps/proxy ./dist/apps/proxy
# Listening on every interface is what a container needs; the embedded default keeps its
# versions on a volume rather than under the read-only /app. One process per container
# (WORKERS=1): containers scale with replicas, and the orchestrator sees and limits each process.
ENV HOST=0.0.0.0 \
  STORAGE_DIR=/var/lib/modproxy/storage \
  WORKERS=1
# 3000: GOPROXY; 7070: the admin port (status page, purge) where ADMIN_PORT=7070 sets it, as
# docker-compose.yml and k8s/ do with the credentials; off unless set.
EXPOSE 3000 7070
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/scripts/healthcheck.mjs", "http://127.0.0.1:3000/readyz"]
CMD ["node", "--import", "/app/dist/apps/proxy/instrument.js", "--enable-source-maps", "/app/dist/apps/proxy/main.js"]

FROM runtime AS storage
COPY --from=build /src/dist/apps/storage ./dist/apps/storage
ENV GRPC_HOST=0.0.0.0 \
  STORAGE_DIR=/var/lib/modproxy/storage
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/scripts/healthcheck.mjs", "http://127.0.0.1:9464/readyz"]
CMD ["node", "--import", "/app/dist/apps/storage/instrument.js", "--enable-source-maps", "/app/dist/apps/storage/main.js"]

FROM runtime-vcs AS lathens
COPY --from=build /src/dist/apps/lathens ./dist/apps/lathens
ENV HOST=0.0.0.0 \
  STORAGE_DIR=/var/lib/modproxy/storage
EXPOSE 7071 7072
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/scripts/healthcheck.mjs", "http://127.0.0.1:7072/readyz"]
CMD ["node", "--import", "/app/dist/apps/lathens/instrument.js", "--enable-source-maps", "/app/dist/apps/lathens/main.js"]

FROM runtime-vcs AS crathens
COPY --from=build /src/dist/apps/crathens ./dist/apps/crathens
ENV ADMIN_HOST=0.0.0.0
EXPOSE 7073
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/scripts/healthcheck.mjs", "http://127.0.0.1:7073/readyz"]
CMD ["node", "--import", "/app/dist/apps/crathens/instrument.js", "--enable-source-maps", "/app/dist/apps/crathens/main.js"]
