package breakerstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/payrouter/payrouter/internal/store"
)

// overridesKey is the Redis hash of forced-open breakers: field
// "provider/method", value the override as JSON.
const overridesKey = "breaker:overrides"

var _ store.BreakerOverrides = (*Store)(nil)

// SetBreakerOverride forces provider × method open for every instance that
// shares this Redis (and prefix).
func (s *Store) SetBreakerOverride(ctx context.Context, o store.BreakerOverride) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.prefix+overridesKey, o.Provider+"/"+o.Method, b).Err(); err != nil {
		return fmt.Errorf("breakerstore: set override: %w", err)
	}
	return nil
}

// ClearBreakerOverride puts provider × method back to automatic.
func (s *Store) ClearBreakerOverride(ctx context.Context, provider, method string) error {
	if err := s.rdb.HDel(ctx, s.prefix+overridesKey, provider+"/"+method).Err(); err != nil {
		return fmt.Errorf("breakerstore: clear override: %w", err)
	}
	return nil
}

// ListBreakerOverrides lists the overrides by provider and method.
func (s *Store) ListBreakerOverrides(ctx context.Context) ([]store.BreakerOverride, error) {
	m, err := s.rdb.HGetAll(ctx, s.prefix+overridesKey).Result()
	if err != nil {
		return nil, fmt.Errorf("breakerstore: list overrides: %w", err)
	}
	out := make([]store.BreakerOverride, 0, len(m))
	for f, v := range m {
		var o store.BreakerOverride
		if err := json.Unmarshal([]byte(v), &o); err != nil {
			return nil, fmt.Errorf("breakerstore: override %s: %w", f, err)
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Method < out[j].Method
	})
	return out, nil
}
