# syntax=docker/dockerfile:1
# steppo's three images, one target each, built from the repository root (the build context):
#   docker build --target operator    -t ghcr.io/steppo/steppo:0.1.0 .
#   docker build --target worker      -t ghcr.io/steppo/steppo-worker:0.1.0 .
#   docker build --target learner-gpu -t ghcr.io/steppo/steppo-learner-gpu:0.1.0 .
# Without --target, docker builds the last stage: operator.
# Every image holds the JavaScript build of the sources (`npm run build`: bin/build.mjs, run in the build stage)
# in /app/dist and no TypeScript sources, so `steppo` (bin/steppo.mjs) runs the build without a TypeScript loader,
# and the whole `steppo` command (cli/main.ts loads every subcommand's help), though each image runs one subcommand.
# BuildKit builds only the stages a target needs (the CPU targets never pull the CUDA base).
# The base images are build arguments: by default the public node images (what a build machine with a
# registry uses); a machine without one passes its own Node 20 images, e.g. the test setup
# (test/cluster/images.ts: `buildah bud --build-arg NODE_IMAGE=... --build-arg RUNTIME_IMAGE=...` on a Debian
# bookworm base with node and npm, built from Debian packages).
#   NODE_IMAGE       the deps and build stages: node and npm (the full image also has python3, make, g++)
#   NODE_SLIM_IMAGE  where the GPU image's node binary comes from (/usr/local/bin/node)
#   RUNTIME_IMAGE    the CPU images (operator, worker): node at /usr/local/bin, groupadd and useradd
ARG NODE_VERSION=20
ARG NODE_IMAGE=node:${NODE_VERSION}-bullseye
ARG NODE_SLIM_IMAGE=node:${NODE_VERSION}-bullseye-slim
ARG RUNTIME_IMAGE=node:${NODE_VERSION}-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04

# Production dependencies, for every image (the optional @tensorflow/tfjs-node downloads its libtensorflow
# here; the full image has python3, make and g++ in case its addon must be compiled). On Debian bullseye:
# glibc 2.31, as Ubuntu 20.04, so a native addon compiled here (if no prebuilt one downloads) runs in the
# CUDA image as well as on bookworm (glibc 2.36).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The GPU learner's dependencies: tfjs-node-gpu's install script downloads the GPU build of libtensorflow
# 2.9.1 into its package; the CPU tfjs-node is dropped (the learner prefers the GPU one).
FROM deps AS deps-gpu
RUN npm install --no-save --omit=dev --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0 \
 && rm -rf node_modules/@tensorflow/tfjs-node \
 && test -f node_modules/@tensorflow/tfjs-node-gpu/package.json \
 && npm cache clean --force

# The build: the TypeScript sources compiled to JavaScript in /app/dist by esbuild (a production dependency,
# so the deps stage has it); the sources stay in this stage.
FROM deps AS build
COPY tsconfig.json ./
COPY bin ./bin
COPY cli ./cli
COPY core ./core
COPY crds ./crds
COPY policy ./policy
COPY envs ./envs
COPY workers ./workers
COPY learner ./learner
COPY runtime ./runtime
COPY operator ./operator
RUN node bin/build.mjs

# What every image holds under /app (besides node_modules): package.json, the launcher and the build.
FROM scratch AS app
WORKDIR /app
COPY package.json package-lock.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist

# Node 20 for the CUDA image, from the official image (its binary needs glibc >= 2.28; Ubuntu 20.04 has 2.31).
FROM ${NODE_SLIM_IMAGE} AS node

# The CPU images (operator and worker): tfjs-node (native CPU) when its prebuilt libtensorflow installs,
# else WebAssembly.
FROM ${RUNTIME_IMAGE} AS cpu
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=app /app ./
# `steppo` on PATH, as the pods the operator creates call it (command: ["steppo", "learner"|"worker"]).
# A non-root user with a fixed uid (65532, as distroless "nonroot"), matching the chart's securityContext.
# (The GPU learner runs the same line on its own base, whose /etc/passwd is its own.)
RUN chmod 0755 /app/bin/steppo.mjs \
 && ln -s /app/bin/steppo.mjs /usr/local/bin/steppo \
 && groupadd --gid 65532 steppo \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin steppo
USER 65532:65532
ENTRYPOINT ["steppo"]

# The rollout worker image on CPU (ghcr.io/steppo/steppo-worker): `steppo worker` generates episodes with
# the policy and plays the environments' tools. Jobs use it with spec.rollout.image.
FROM cpu AS worker
# /metrics (STEPPO_METRICS_PORT)
EXPOSE 9464
CMD ["worker"]

# The GPU learner image (ghcr.io/steppo/steppo-learner-gpu): `steppo learner` on @tensorflow/tfjs-node-gpu
# 4.22.0, whose libtensorflow 2.9.1 is built against CUDA 11.2 and cuDNN 8.1, hence this CUDA base.
# The node needs an NVIDIA driver >= 450.80.02 and the NVIDIA container runtime / device plugin; jobs ask
# for a GPU with spec.learner.resources.limits["nvidia.com/gpu"] and use the image with spec.learner.image.
FROM ${CUDA_IMAGE} AS learner-gpu
ENV NODE_ENV=production
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=deps-gpu /app/node_modules ./node_modules
COPY --from=app /app ./
# As in the cpu stage: `steppo` on PATH and the non-root user 65532.
RUN chmod 0755 /app/bin/steppo.mjs \
 && ln -s /app/bin/steppo.mjs /usr/local/bin/steppo \
 && groupadd --gid 65532 steppo \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin steppo
USER 65532:65532
# /metrics (STEPPO_METRICS_PORT)
EXPOSE 9464
ENTRYPOINT ["steppo"]
CMD ["learner"]

# The steppo image (ghcr.io/steppo/steppo): `steppo operator`, and the default image of the learner and
# rollout pods of jobs that name none (`steppo learner` / `steppo worker` on CPU). Last, so that it is the
# default target.
FROM cpu AS operator
# /healthz, /readyz, /metrics (steppo operator --port)
EXPOSE 8080
CMD ["operator"]
