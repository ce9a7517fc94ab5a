# doorsim in a container: a multi-stage build (the Rust toolchain only in the first stage), a
# slim Debian runtime, a non-root user and a health check on the HTTP port.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin doorsim

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/doorsim --create-home --shell /usr/sbin/nologin doorsim
COPY --from=build /src/target/release/doorsim /usr/local/bin/doorsim
USER doorsim
WORKDIR /var/lib/doorsim
# HTTP (Call service, control API, web page, metrics), RTSP, SIP over UDP/TCP and TLS.
EXPOSE 8080 8554 5060/udp 5060 5061
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["doorsim"]
CMD ["--http", "0.0.0.0:8080"]
