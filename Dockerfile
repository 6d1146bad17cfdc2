# Railyard's image: railyard-api, railyard-export and the railyard CLI on debian-slim, running as a non-root user.
# Everything is built from source (libgit2, OpenSSL and libssh2 are vendored), so the runtime needs only CA
# certificates.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
    && mkdir /out && cp target/release/railyard-api target/release/railyard-export target/release/railyard /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 railyard && useradd --uid 10001 --gid 10001 --home /data --no-create-home railyard
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /data
ENV RAILYARD_REPO_DIR=/data/repo.git RAILYARD_LISTEN=0.0.0.0:8080 RAILYARD_LOG_FORMAT=json
EXPOSE 8080 9091
ENTRYPOINT ["railyard-api"]
