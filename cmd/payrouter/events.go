package main

import (
	"context"

	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/events"
)

func eventsTail(ctx context.Context, args []string, stdout, stderr writer) int {
	return events.Tail(ctx, args, stdout, stderr, events.Deps{Open: openEvents})
}

func eventsRedeliver(ctx context.Context, args []string, stdout, stderr writer) int {
	return events.RedeliverCmd(ctx, args, stdout, stderr, events.Deps{Open: openEvents})
}

// openEvents opens the store of the config file at path and reads its
// merchants' webhook endpoints.
func openEvents(ctx context.Context, path string) (*events.Env, func(), error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return &events.Env{Store: st, Endpoints: app.Endpoints(cfg)}, func() { _ = st.Close() }, nil
}
