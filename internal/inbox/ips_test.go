package inbox

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
		_, err := in.Receive(context.Background(), "stripe", netip.MustParseAddr(ip), http.Header{}, []byte(`{}`))
		if re := refusal(err); re != RefusedSender {
			t.Errorf("%s: %v, want refused %s", ip, err, RefusedSender)
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
	if _, err := in.Receive(context.Background(), "paypal", netip.Addr{}, http.Header{}, nil); refusal(err) != RefusedUnknownProvider {
		t.Errorf("unknown provider: %v, want refused %s", err, RefusedUnknownProvider)
	}
}

func refusal(err error) Refusal {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

// X-Forwarded-For is read from the right: each trusted proxy appended the
// address it got the request from; what the client wrote (the left part)
// is never believed, and nothing is believed from an untrusted peer.
func TestClientAddr(t *testing.T) {
	trusted, err := ParseCIDRs([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer string
		xff        []string
		want       string // "" = the invalid address
	}{
		{"direct client, no header", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"direct client spoofing the header", "203.0.113.9:5000", []string{"192.0.2.1"}, "203.0.113.9"},
		{"one trusted proxy", "10.0.0.2:443", []string{"198.51.100.7"}, "198.51.100.7"},
		{"spoofed leftmost behind a trusted proxy", "10.0.0.2:443", []string{"192.0.2.1, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies", "10.0.0.2:443", []string{"192.0.2.1, 198.51.100.7, 10.1.1.1, 10.2.2.2"}, "198.51.100.7"},
		{"several header lines", "10.0.0.2:443", []string{"192.0.2.1", "198.51.100.7, 10.1.1.1"}, "198.51.100.7"},
		{"IPv6 client via IPv6 proxy", "[2001:db8::1]:443", []string{"2001:db8:ffff::1, 2001:4860::8888"}, "2001:4860::8888"},
		{"v4-mapped peer", "[::ffff:10.0.0.2]:443", []string{"198.51.100.7"}, "198.51.100.7"},
		{"garbage in the read part", "10.0.0.2:443", []string{"198.51.100.7, not-an-ip"}, ""},
		{"garbage left of the client is ignored", "10.0.0.2:443", []string{"not-an-ip, 198.51.100.7"}, "198.51.100.7"},
		{"only trusted proxies", "10.0.0.2:443", []string{"10.3.3.3"}, ""},
		{"trusted proxy's own request", "10.0.0.2:443", nil, "10.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/webhooks/stripe", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := ClientAddr(r, trusted)
			want := netip.Addr{}
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("ClientAddr = %v, want %v", got, want)
			}
		})
	}
	// With no trusted proxies the header is never read.
	r := httptest.NewRequest("POST", "/webhooks/stripe", nil)
	r.RemoteAddr = "203.0.113.9:5000"
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	if got := ClientAddr(r, nil); got != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("no trusted proxies: ClientAddr = %v, want the peer", got)
	}
}
