# syntax=docker/dockerfile:1
# ocrgate: the release binary, and the local provider's models with the libonnxruntime.so it
# loads in /models, on a distroless base, run as the non-root user 65532. The binary is dynamic
# on glibc only; it handles SIGTERM itself, so no shell or init wraps it.
#
# One recipe, two bases:
# - with registry access, `docker build .` (or `podman build .`) compiles the binary on
#   BUILD_BASE, fetches the models on MODELS_BASE, and ships them on RUNTIME_BASE (distroless);
# - offline, scripts/check-image.sh builds it with RUNTIME_BASE set to a base assembled from
#   Debian's packages (scripts/build-base-image.sh) and PAYLOAD=prebuilt: the binary, models
#   and SBOM come from the build context's dist/, made by `cargo build --release`,
#   fetch-models.sh and cargo-cyclonedx.
ARG BUILD_BASE=docker.io/library/rust:1.95-slim-bookworm
ARG MODELS_BASE=docker.io/library/python:3.11-slim-bookworm
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot
ARG PAYLOAD=built

# The binary, and the SBOM of its Rust dependencies (CycloneDX).
FROM ${BUILD_BASE} AS build
WORKDIR /src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo install --locked cargo-cyclonedx@0.5.9
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ocrgate \
    && cargo cyclonedx --quiet --describe binaries --no-build-deps --spec-version 1.5 --format json \
    && mkdir -p /dist \
    && cp target/release/ocrgate /dist/ocrgate \
    && cp ocrgate_bin.cdx.json /dist/ocrgate.cdx.json

# The local provider's models and ONNX Runtime, from PyPI, pinned by hash, and its own detector
# and recogniser.
FROM ${MODELS_BASE} AS models
WORKDIR /src
COPY scripts/fetch-models.sh scripts/models-requirements.txt scripts/
COPY data/card-detector.onnx data/card-recogniser.onnx data/
RUN scripts/fetch-models.sh /dist/models

FROM scratch AS built
COPY --from=build /dist/ /dist/
COPY --from=models /dist/models /dist/models

FROM scratch AS prebuilt
COPY dist/ /dist/

FROM ${PAYLOAD} AS payload

FROM ${RUNTIME_BASE}
COPY --from=payload /dist/ocrgate /usr/local/bin/ocrgate
COPY --from=payload /dist/models /models
COPY --from=payload /dist/ocrgate.cdx.json /usr/share/doc/ocrgate/ocrgate.cdx.json
ENV OCRGATE_LOCAL__MODELS_DIR=/models
USER 65532:65532
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/ocrgate", "serve"]
