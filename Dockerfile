# payrouter: a static binary (pure-Go SQLite, no cgo) on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /payrouter ./cmd/payrouter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /payrouter /payrouter
COPY config.yaml /etc/payrouter/config.yaml
WORKDIR /var/lib/payrouter
EXPOSE 8080
ENTRYPOINT ["/payrouter", "serve", "--config", "/etc/payrouter/config.yaml"]
