// Package reqid carries a request's id through its context and into every
// log line written with that context (slog's *Context methods).
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"strings"
)

// Header is the HTTP header that carries the id, both ways.
const Header = "Request-Id"

type ctxKey struct{}

// New returns a fresh id: "req_" and 26 random base32 characters.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "req_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Valid reports whether a client's id is safe to echo and log: 1–64
// characters of [A-Za-z0-9._:-].
func Valid(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns ctx's id, or "".
func From(ctx context.Context) string { s, _ := ctx.Value(ctxKey{}).(string); return s }

// Handler adds request_id to every record logged with a context that
// carries one.
type Handler struct{ slog.Handler }

// NewHandler wraps h.
func NewHandler(h slog.Handler) *Handler { return &Handler{h} }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler { return &Handler{h.Handler.WithAttrs(as)} }

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler { return &Handler{h.Handler.WithGroup(name)} }
