package main

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/recon"
)

func reconcile(ctx context.Context, args []string, stdout, stderr writer) int {
	return recon.Command(ctx, args, stdout, stderr, recon.Deps{Open: openRecon})
}

func rulesFees(ctx context.Context, args []string, stdout, stderr writer) int {
	return recon.FeesCommand(ctx, args, stdout, stderr, recon.Deps{Open: openRecon})
}

// openRecon opens the store of the config at path and builds its
// adapters to list settlements. In sandbox the simulators live in the
// running payrouter, so the adapters are pointed at server (default: the
// config's listen address on loopback).
func openRecon(ctx context.Context, path, server string) (*recon.Env, func(), error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if server == "" {
		server = loopbackURL(cfg.Server.Listen)
	}
	server = strings.TrimSuffix(server, "/")
	// The mux only receives throwaway simulators: the running instance's
	// own are reached through server.
	b, err := app.BuildProviders(cfg, server, server, http.NewServeMux())
	if err != nil {
		return nil, nil, err
	}
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	env := &recon.Env{Ledger: st, Listers: app.SettlementSources(cfg, b, server, http.DefaultClient), Configured: cfg.ProviderNames(),
		Formats: app.SettlementFormats(cfg), Runs: st}
	if set, err := app.CompileRules(cfg, b.Caps()); err == nil {
		env.Fee = set.ExpectedFee
	}
	return env, func() { _ = st.Close() }, nil
}

// loopbackURL turns a listen address (":8080", "0.0.0.0:8080") into a URL
// this host can call.
func loopbackURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
