package snapbi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter/providers"
)

func TestVerifyNotification(t *testing.T) {
	_, wallet, err := GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	body := []byte(`{"originalReferenceNo":"R1","amount":{"value":"10000.00","currency":"IDR"},"latestTransactionStatus":"00"}`)
	sign := func(key interface{}, path string, b []byte, at time.Time) http.Header {
		h, err := SignNotification(wallet, http.MethodPost, path, b, at)
		if key != nil {
			h, err = SignNotification(other, http.MethodPost, path, b, at)
		}
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		name    string
		h       http.Header
		body    []byte
		wantErr bool
	}{
		{"valid", sign(nil, "/webhooks/dana", body, now), body, false},
		{"valid pretty body", sign(nil, "/webhooks/dana", body, now), []byte(strings.ReplaceAll(string(body), ",", ",\n ")), false},
		{"clock skew within tolerance", sign(nil, "/webhooks/dana", body, now.Add(-4*time.Minute)), body, false},
		{"wrong key", sign(1, "/webhooks/dana", body, now), body, true},
		{"other path", sign(nil, "/webhooks/ovo", body, now), body, true},
		{"tampered amount", sign(nil, "/webhooks/dana", body, now), []byte(strings.Replace(string(body), "10000.00", "99999.00", 1)), true},
		{"stale", sign(nil, "/webhooks/dana", body, now.Add(-6*time.Minute)), body, true},
		{"future", sign(nil, "/webhooks/dana", body, now.Add(6*time.Minute)), body, true},
		{"no headers", http.Header{}, body, true},
		{"not json", sign(nil, "/webhooks/dana", body, now), []byte("{"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyNotification(&wallet.PublicKey, http.MethodPost, "/webhooks/dana", tt.h, tt.body, now, 5*time.Minute)
			if (err != nil) != tt.wantErr {
				t.Fatalf("VerifyNotification = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !providers.IsSignatureError(err) {
				t.Errorf("error %v is not a signature error", err)
			}
		})
	}
}
