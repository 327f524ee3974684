# syntax=docker/dockerfile:1
# ocrgate: build with the Rust toolchain, run on distroless as a non-root user. The binary is
# static apart from glibc; it handles SIGTERM itself, so no shell or init wraps it.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ocrgate \
    && cp target/release/ocrgate /ocrgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /ocrgate /usr/local/bin/ocrgate
USER 65532:65532
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/ocrgate", "serve"]
