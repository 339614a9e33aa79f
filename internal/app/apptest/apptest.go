// Package apptest starts sandbox payrouter instances for end-to-end tests
// and benchmarks.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/payrouter/payrouter/internal/app"
	"github.com/payrouter/payrouter/internal/config"
	"log/slog"
)

// RepoFile returns the path of a file at the repository root (tests).
func RepoFile(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", name)
}

// TestInstance is a running sandbox payrouter for tests and benchmarks.
type TestInstance struct {
	*app.App
	// Client validates every call against openapi.yaml (SpecTransport);
	// Do uses it.
	Client *http.Client
	Spec   *SpecTransport
	cancel context.CancelFunc
	done   chan struct{}
}

// StartSandbox starts the shipped config.yaml in sandbox on a loopback
// port with its store at dsn; mutate may adjust the config first.
func StartSandbox(tb testing.TB, dsn string, mutate func(*config.Config)) *TestInstance {
	tb.Helper()
	return StartSandboxWith(tb, dsn, mutate, app.Options{})
}

// StartSandboxLog is StartSandbox logging to log (tests that read the log).
func StartSandboxLog(tb testing.TB, dsn string, mutate func(*config.Config), log *slog.Logger) *TestInstance {
	tb.Helper()
	return StartSandboxWith(tb, dsn, mutate, app.Options{Log: log})
}

// StartSandboxWith is StartSandbox with app options (Listener is set here,
// and Log when nil).
func StartSandboxWith(tb testing.TB, dsn string, mutate func(*config.Config), opts app.Options) *TestInstance {
	tb.Helper()
	data, err := os.ReadFile(RepoFile("config.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Parse(RepoFile("config.yaml"), data, func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Store.DSN = dsn
	cfg.Log.Level = "error"
	// Load and chaos tests send far more than a merchant's default budget;
	// rate limit tests set their own.
	cfg.Server.RateLimit = &config.RateLimit{}
	if mutate != nil {
		mutate(cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts.Listener = ln
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	a, err := app.New(ctx, cfg, opts)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	spec, err := NewSpecTransport(a.URL, nil)
	if err != nil {
		cancel()
		a.Close()
		tb.Fatal(err)
	}
	ti := &TestInstance{App: a, Client: &http.Client{Transport: spec}, Spec: spec, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(ti.done); _ = a.Serve(ctx) }()
	tb.Cleanup(ti.Stop)
	return ti
}

// Stop shuts the instance down gracefully and closes its store.
func (ti *TestInstance) Stop() {
	if ti.cancel == nil {
		return
	}
	ti.cancel()
	select {
	case <-ti.done:
	case <-time.After(30 * time.Second):
	}
	ti.Close()
	ti.cancel = nil
}

// Do sends a request with the demo merchant's key and returns status and body.
func (ti *TestInstance) Do(tb testing.TB, method, path string, body any, hdr ...string) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, ti.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_sandbox_demo")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := ti.Client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}
