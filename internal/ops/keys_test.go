package ops

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter/providers"
)

func TestKeys(t *testing.T) {
	sum := sha256.Sum256([]byte("ok_hashed_operator_key"))
	ks, err := NewKeys([]KeyConfig{
		{ID: "a", Key: "ok_plain_admin_key", Role: "admin"},
		{ID: "o", Key: "sha256:" + hex.EncodeToString(sum[:]), Role: "operator"},
		{ID: "v", Key: "ok_plain_viewer_key", Role: "viewer"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token string
		want  Actor
		ok    bool
	}{
		{"ok_plain_admin_key", Actor{"a", Admin}, true},
		{"ok_hashed_operator_key", Actor{"o", Operator}, true},
		{"sha256:" + hex.EncodeToString(sum[:]), Actor{}, false}, // the hash is not the key
		{"ok_plain_viewer_key", Actor{"v", Viewer}, true},
		{"", Actor{}, false},
		{"sk_sandbox_demo", Actor{}, false},
	} {
		got, ok := ks.Authenticate(tc.token)
		if ok != tc.ok || got != tc.want {
			t.Errorf("Authenticate(%q) = %+v, %v; want %+v, %v", tc.token, got, ok, tc.want, tc.ok)
		}
	}
	for _, bad := range [][]KeyConfig{
		{{ID: "x", Key: "ok_plain_admin_key", Role: "root"}},
		{{ID: "x", Key: "sha256:abcd", Role: "admin"}},
		{{ID: "x", Key: "short", Role: "admin"}},
		{{ID: "", Key: "ok_plain_admin_key", Role: "admin"}},
		{{ID: "x", Key: "ok_plain_admin_key", Role: "admin"}, {ID: "x", Key: "ok_plain_other_key", Role: "viewer"}},
	} {
		if _, err := NewKeys(bad); err == nil || !strings.Contains(err.Error(), "ops.keys[") {
			t.Errorf("NewKeys(%+v) = %v, want an error naming the entry", bad, err)
		}
	}
	if err := need(Actor{"v", Viewer}, Operator); StatusOf(err) != 403 {
		t.Errorf("viewer doing operator work: status %d, want 403", StatusOf(err))
	}
	if err := need(Actor{"a", Admin}, Operator); err != nil {
		t.Errorf("admin doing operator work: %v", err)
	}
}

func TestHealthWindows(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	h := NewHealth()
	h.now = func() time.Time { return now }
	// 40 min ago: 10 failures at 900 ms. Last 5 min: 19 ok at 1..19 ms and
	// one decline (a working provider) at 100 ms.
	now = now.Add(-40 * time.Minute)
	for range 10 {
		h.Observe("stripe", "card", "authorize", providers.Unavailable, 900*time.Millisecond)
	}
	now = now.Add(38 * time.Minute)
	for i := 1; i <= 19; i++ {
		h.Observe("stripe", "card", "authorize", "", time.Duration(i)*time.Millisecond)
	}
	h.Observe("stripe", "card", "authorize", providers.Declined, 100*time.Millisecond)
	now = now.Add(2 * time.Minute)

	w5 := h.Stats("stripe", "card", 5*time.Minute)
	if w5.Calls != 20 || w5.SuccessRate != 1 || w5.P50ms != 10 || w5.P95ms != 19 {
		t.Errorf("5m window %+v, want 20 calls, 100%%, p50 10, p95 19", w5)
	}
	w1 := h.Stats("stripe", "card", time.Hour)
	if w1.Calls != 30 || w1.SuccessRate != 20.0/30 || w1.P95ms != 900 {
		t.Errorf("1h window %+v, want 30 calls, 2/3, p95 900", w1)
	}
	if s := h.Series("stripe", "", time.Hour, 12); len(s) != 12 || s[4].Calls != 10 || s[11].Calls != 20 {
		t.Errorf("series %+v", s)
	}
	now = now.Add(2 * time.Hour)
	h.Observe("stripe", "card", "authorize", "", time.Millisecond) // trims the old samples
	if w := h.Stats("stripe", "card", time.Hour); w.Calls != 1 {
		t.Errorf("after two hours: %+v", w)
	}
}
