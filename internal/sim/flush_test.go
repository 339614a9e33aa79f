package sim

import (
	"context"
	"errors"
	"testing"
	"time"
)

// slowBackend's Flush waits until released.
type slowBackend struct {
	Backend
	release chan struct{}
}

func (b slowBackend) Flush() { <-b.release }

func TestFlushWithinGivesUp(t *testing.T) {
	b := slowBackend{release: make(chan struct{})}
	defer close(b.release)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := FlushWithin(ctx, b); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("FlushWithin a stuck flush = %v, want the deadline", err)
	}
}

func TestFlushWithinReturnsWhenFlushed(t *testing.T) {
	b := slowBackend{release: make(chan struct{})}
	close(b.release)
	if err := FlushWithin(context.Background(), b); err != nil {
		t.Errorf("FlushWithin = %v, want nil", err)
	}
	// A backend without asynchronous webhooks has nothing to flush.
	if err := FlushWithin(context.Background(), struct{ Backend }{}); err != nil {
		t.Errorf("FlushWithin(no Flusher) = %v, want nil", err)
	}
}
