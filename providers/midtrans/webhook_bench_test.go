package midtrans_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter/providers/midtrans"
)

// BenchmarkParseWebhook measures verifying a Midtrans notification through
// the adapter (SHA-512 signature_key over order_id, status_code,
// gross_amount and the server key, compared in constant time) and
// normalizing it; BenchmarkSignatureKey is the hash alone.
func BenchmarkParseWebhook(b *testing.B) {
	raw, err := os.ReadFile("testdata/notification_qris_settlement.json")
	if err != nil {
		b.Fatal(err)
	}
	// Re-sign the documented fixture with the test server key (resign in
	// fixtures_test.go takes a *testing.T).
	var n struct {
		OrderID      string `json:"order_id"`
		StatusCode   string `json:"status_code"`
		GrossAmount  string `json:"gross_amount"`
		SignatureKey string `json:"signature_key"`
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		b.Fatal(err)
	}
	body := []byte(strings.Replace(string(raw), n.SignatureKey, midtrans.SignatureKey(n.OrderID, n.StatusCode, n.GrossAmount, serverKey), 1))
	p, err := midtrans.New(midtrans.Config{Name: "midtrans", ServerKey: serverKey})
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := p.ParseWebhook(h, body, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignatureKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = midtrans.SignatureKey("pay_0123456789abcdefghijklmn_a1", "200", "50000.00", serverKey)
	}
}
