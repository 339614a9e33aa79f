package inbox

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/payrouter/payrouter/providers"
)

type acceptAll struct{ calls int }

func (a *acceptAll) ParseWebhook(http.Header, []byte, time.Time) (*providers.Notification, error) {
	a.calls++
	return &providers.Notification{EventID: "e1", Kind: providers.KindPayment}, nil
}

// A sender outside webhook_ips is refused before anything is parsed or
// stored (no store is given: touching it would panic).
func TestWebhookIPsRefuseOutsiders(t *testing.T) {
	cidrs, err := ParseCIDRs([]string{"10.0.0.0/8", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	parser := &acceptAll{}
	in := New(nil, nil, map[string]Source{"stripe": {Parser: parser, AllowedIPs: cidrs}}, nil)
	for _, ip := range []string{"127.0.0.1", "192.0.2.8", "11.0.0.1", "::1"} {
		res := in.Receive(context.Background(), "stripe", netip.MustParseAddr(ip), http.Header{}, []byte(`{}`))
		if res.Status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", ip, res.Status)
		}
	}
	if parser.calls != 0 || in.Refused.Load() != 4 {
		t.Errorf("parsed %d, refused %d; want 0 and 4", parser.calls, in.Refused.Load())
	}
	if !allowed(cidrs, netip.MustParseAddr("10.1.2.3")) || !allowed(cidrs, netip.MustParseAddr("::ffff:192.0.2.7")) {
		t.Error("an allowed sender is refused")
	}
	if _, err := ParseCIDRs([]string{"not-an-ip"}); err == nil {
		t.Error("a bad webhook_ips entry is accepted")
	}
	if res := in.Receive(context.Background(), "paypal", netip.Addr{}, http.Header{}, nil); res.Status != http.StatusNotFound {
		t.Errorf("unknown provider: %d, want 404", res.Status)
	}
}
