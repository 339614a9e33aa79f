package app

import (
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/events"
	"github.com/payrouter/payrouter/internal/store"
)

// Endpoints returns the merchants' webhook endpoints (merchants without a
// webhook_url are left out: their events are pulled, not pushed).
func Endpoints(cfg *config.Config) map[string]events.Endpoint {
	eps := map[string]events.Endpoint{}
	for _, m := range cfg.Merchants {
		if m.WebhookURL != "" {
			eps[m.ID] = events.Endpoint{URL: m.WebhookURL, Secret: m.WebhookSecret}
		}
	}
	return eps
}

// buildEvents makes the merchant webhook dispatcher and, when redis.url is
// set, the Redis stream publisher (nil otherwise) with its closer.
func buildEvents(cfg *config.Config, st store.Store, log *slog.Logger) (*events.Dispatcher, *events.Publisher, func(), error) {
	d := events.NewDispatcher(st, events.Options{
		Endpoints: Endpoints(cfg), RetryFor: cfg.Events.RetryFor.D(0), BaseDelay: cfg.Events.RetryBase.D(0),
		Concurrency: cfg.Events.Concurrency, Log: log,
	})
	if cfg.Redis.URL == "" {
		return d, nil, func() {}, nil
	}
	opt, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		// go-redis's message does not echo the password.
		return nil, nil, nil, fmt.Errorf("%s: redis.url: %w", cfg.Path, err)
	}
	rdb := redis.NewClient(opt)
	p := events.NewPublisher(st, rdb, events.PublisherOptions{Stream: cfg.Redis.Stream, MaxLen: cfg.Redis.MaxLen, Log: log})
	return d, p, func() { _ = rdb.Close() }, nil
}
