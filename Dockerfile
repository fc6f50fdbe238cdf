# syntax=docker/dockerfile:1
#
# tickflow: multi-stage build.
#   builder: rust:1.95-bookworm compiles the binary with Cargo.toml's `image` profile: release
#            code without debug info (librdkafka is built from source by rdkafka-sys and
#            linked statically).
#   runtime: debian:bookworm-slim with the binary, CA certificates and curl for the health check.
#
# scripts/check_docker_context.sh (run by scripts/test) lays out what the COPY lines below
# give the builder and compiles it, so a file the crate needs but the image lacks fails CI.
#
#   docker build -t tickflow .
#   docker run --rm -p 8000:8000 -e DATABASE_URL=... -e KAFKA_BOOTSTRAP_SERVERS=... tickflow

############################
# Builder
############################
FROM rust:1.95-bookworm AS builder

# rdkafka-sys builds the bundled librdkafka with its configure script and make (no cmake):
# a C/C++ toolchain, make, pkg-config, zlib headers, perl and python3 are all it needs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc g++ make pkg-config zlib1g-dev perl python3 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# 1. Dependencies only, cached until Cargo.toml or Cargo.lock change.
#    Cargo has to parse the whole manifest, so every declared target needs a file: a dummy
#    src/main.rs and src/lib.rs, and one stub per [[bench]] (names read from Cargo.toml, so a
#    new bench does not break this step). The stubs' own artefacts are then removed so the
#    real sources are always recompiled, whatever their timestamps.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && for bench in $(awk '/^\[\[bench\]\]/ { in_bench = 1; next }; \
                        /^\[/              { in_bench = 0 }; \
                        in_bench && /^[[:space:]]*name[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); print }' Cargo.toml); do \
        echo 'fn main() {}' > "benches/${bench}.rs"; \
    done \
 && cargo build --profile image --locked --bin tickflow \
 && cargo clean --profile image -p tickflow \
 && rm -rf src benches

# 2. The real sources. sql/ holds the migrations and assets/ the pages and scripts that src/
#    embeds (include_str!, include_bytes!): needed at compile time only. benches/ must exist
#    because Cargo.toml declares the benches. (If a build.rs or another embedded directory
#    is added, copy it here too: scripts/check_docker_context.sh fails until it is.)
COPY src ./src
COPY sql ./sql
COPY assets ./assets
COPY benches ./benches
RUN cargo build --profile image --locked --bin tickflow \
 && install -m 0755 target/image/tickflow /usr/local/bin/tickflow

############################
# Runtime
############################
FROM debian:bookworm-slim AS runtime

# ca-certificates: HTTPS to the market-data providers. curl: the HEALTHCHECK below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system tickflow \
 && useradd --system --gid tickflow --home-dir /home/tickflow --create-home \
      --shell /usr/sbin/nologin tickflow

COPY --from=builder /usr/local/bin/tickflow /usr/local/bin/tickflow

USER tickflow
WORKDIR /home/tickflow

ENV RUST_LOG=info
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8000/health || exit 1

ENTRYPOINT ["tickflow"]
# Listen on every interface so a published port reaches the server; compose passes the same.
CMD ["serve", "--http-addr", "0.0.0.0:8000"]
