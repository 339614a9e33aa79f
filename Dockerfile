# payrouter: a static binary (pure-Go SQLite, no cgo) on a distroless base
# (no shell: the health check is `payrouter healthcheck`).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /payrouter ./cmd/payrouter \
 && mkdir -p /state/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /payrouter /payrouter
COPY config.yaml /etc/payrouter/config.yaml
# The SQLite file (store.dsn data/payrouter.db, relative to the working
# directory) lives in a volume the nonroot user owns.
COPY --from=build --chown=nonroot:nonroot /state /var/lib/payrouter
WORKDIR /var/lib/payrouter
VOLUME /var/lib/payrouter
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/payrouter", "healthcheck"]
# The command alone is replaceable (docker run IMAGE serve --config …,
# compose's command:) without repeating the binary or appending to it.
ENTRYPOINT ["/payrouter"]
CMD ["serve", "--config", "/etc/payrouter/config.yaml"]
