package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/config"
)

// simCmd serves the sandbox simulators of the config's stripe, midtrans
// and xendit providers on their own, so they outlive a router that is
// killed (crash tests). The router points at them with `sim_url:` in its
// config.
//
//	payrouter sim --config config.yaml --listen 127.0.0.1:9090 --router http://127.0.0.1:8080
func simCmd(ctx context.Context, args []string, stdout, stderr writer) int {
	fs := newFlags("sim", "sim [--config config.yaml] [--listen 127.0.0.1:9090] [--router URL] [--public URL]", stderr)
	path := fs.String("config", "config.yaml", "config file (its providers)")
	listen := fs.String("listen", "127.0.0.1:9090", "listen address")
	routerURL := fs.String("router", "http://127.0.0.1:8080", "router base URL the simulators post webhooks to")
	public := fs.String("public", "", "public base URL of this server (default http://<listen>)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "payrouter sim: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter sim: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "payrouter sim: %v\n", err)
		return 1
	}
	base := *public
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	mux := http.NewServeMux()
	sims, err := app.BuildSimulators(cfg, *routerURL, base, mux)
	if err != nil {
		_ = ln.Close()
		fmt.Fprintf(stderr, "payrouter sim: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "payrouter sim: serving %d simulators at %s/sim/{provider}, webhooks to %s\n", len(sims), base, *routerURL)
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(sctx)
		cancel()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "payrouter sim: %v\n", err)
		return 1
	}
	return 0
}
