package webhooksig_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter/webhooksig"
)

// Vectors computed outside Go (Python hmac and openssl dgst -hmac), so the
// test cannot agree with a wrong implementation by construction.
var vectors = []struct {
	secret string
	t      int64
	body   string
	want   string
}{
	{"whsec_demo", 1700000000, `{"id":"evt_0000000000000001"}`, "022b8b187756918d4ea36cd35f2dc11ca23a182b692de13edb7dfecc4176c134"},
	{"secret", 0, ``, "3445798a051818ef95def46c2eb62b43d377ce6e3c29b4d0aec3da0e59577f79"},
	{"kéy", 1234567890, `hello world`, "a9a0ad121854f48670d3c89446545dbb8fbdac8c80da7474fefa3550156ec265"},
}

func TestSignKnownVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(fmt.Sprintf("%s/%d", v.secret, v.t), func(t *testing.T) {
			if got := webhooksig.Sign(v.secret, time.Unix(v.t, 0), []byte(v.body)); got != v.want {
				t.Errorf("Sign = %s, want %s", got, v.want)
			}
			h := webhooksig.HeaderValue(v.secret, time.Unix(v.t, 0), []byte(v.body))
			if want := fmt.Sprintf("t=%d,v1=%s", v.t, v.want); h != want {
				t.Errorf("HeaderValue = %s, want %s", h, want)
			}
			if err := webhooksig.Verify(h, []byte(v.body), v.secret, time.Minute, time.Unix(v.t+30, 0)); err != nil {
				t.Errorf("Verify of a genuine vector: %v", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	const secret = "whsec_demo"
	body := []byte(`{"id":"evt_0000000000000001"}`)
	ts := time.Unix(1700000000, 0)
	good := "022b8b187756918d4ea36cd35f2dc11ca23a182b692de13edb7dfecc4176c134"
	other := webhooksig.Sign("old_secret", ts, body)
	tests := []struct {
		name      string
		header    string
		body      []byte
		secret    string
		tolerance time.Duration
		now       time.Time
		want      error
	}{
		{"genuine", "t=1700000000,v1=" + good, body, secret, 0, ts, nil},
		{"spaces after commas", "t=1700000000, v1=" + good, body, secret, 0, ts, nil},
		{"rotated: second v1 matches", "t=1700000000,v1=" + other + ",v1=" + good, body, secret, 0, ts, nil},
		{"unknown scheme ignored", "t=1700000000,v0=abc,v1=" + good, body, secret, 0, ts, nil},
		{"at the tolerance edge", "t=1700000000,v1=" + good, body, secret, time.Minute, ts.Add(time.Minute), nil},
		{"tolerance check skipped", "t=1700000000,v1=" + good, body, secret, -1, ts.Add(1000 * time.Hour), nil},
		{"empty header", "", body, secret, 0, ts, webhooksig.ErrMissingHeader},
		{"no t", "v1=" + good, body, secret, 0, ts, webhooksig.ErrMalformedHeader},
		{"two t", "t=1700000000,t=1700000001,v1=" + good, body, secret, 0, ts, webhooksig.ErrMalformedHeader},
		{"no v1", "t=1700000000", body, secret, 0, ts, webhooksig.ErrMalformedHeader},
		{"t not a number", "t=abc,v1=" + good, body, secret, 0, ts, webhooksig.ErrMalformedHeader},
		{"v1 not hex", "t=1700000000,v1=zz", body, secret, 0, ts, webhooksig.ErrMalformedHeader},
		{"v1 too short", "t=1700000000,v1=" + good[:10], body, secret, 0, ts, webhooksig.ErrMalformedHeader},
		{"no equals", "t1700000000", body, secret, 0, ts, webhooksig.ErrMalformedHeader},
		{"empty secret", "t=1700000000,v1=" + good, body, "", 0, ts, webhooksig.ErrNoSecret},
		{"too old", "t=1700000000,v1=" + good, body, secret, time.Minute, ts.Add(61 * time.Second), webhooksig.ErrTooOld},
		{"from the future", "t=1700000000,v1=" + good, body, secret, time.Minute, ts.Add(-61 * time.Second), webhooksig.ErrTooOld},
		{"default tolerance is 5m", "t=1700000000,v1=" + good, body, secret, 0, ts.Add(6 * time.Minute), webhooksig.ErrTooOld},
		{"tampered body", "t=1700000000,v1=" + good, []byte(`{"id":"evt_0000000000000002"}`), secret, 0, ts, webhooksig.ErrMismatch},
		{"wrong secret", "t=1700000000,v1=" + good, body, "whsec_other", 0, ts, webhooksig.ErrMismatch},
		{"timestamp changed", "t=1700000001,v1=" + good, body, secret, 0, ts, webhooksig.ErrMismatch},
		{"only an old secret's signature", "t=1700000000,v1=" + other, body, secret, 0, ts, webhooksig.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhooksig.Verify(tt.header, tt.body, tt.secret, tt.tolerance, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), tt.secret) && tt.secret != "" {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1700000000,v1=022b8b187756918d4ea36cd35f2dc11ca23a182b692de13edb7dfecc4176c134", []byte(`{}`))
	f.Add("t=,v1=,,=", []byte(nil))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		now := time.Unix(1700000000, 0)
		err := webhooksig.Verify(header, body, "whsec_demo", time.Minute, now)
		if err == nil {
			// Only a header carrying the genuine signature may pass.
			if !strings.Contains(header, webhooksig.Sign("whsec_demo", mustParse(t, header).Timestamp, body)) {
				t.Fatalf("Verify accepted %q without the genuine signature", header)
			}
		}
	})
}

func mustParse(t *testing.T, h string) *webhooksig.Parsed {
	p, err := webhooksig.Parse(h)
	if err != nil {
		t.Fatalf("Verify passed a header Parse refuses: %v", err)
	}
	return p
}

func ExampleVerify() {
	secret := "whsec_demo"
	body := []byte(`{"id":"evt_0000000000000001","type":"payment_success"}`)
	sentAt := time.Unix(1700000000, 0)
	header := webhooksig.HeaderValue(secret, sentAt, body) // what payrouter sends

	err := webhooksig.Verify(header, body, secret, 5*time.Minute, sentAt.Add(3*time.Second))
	fmt.Println("genuine:", err)
	err = webhooksig.Verify(header, []byte(`{"id":"evt_0000000000000001","type":"payment_failed"}`), secret, 5*time.Minute, sentAt)
	fmt.Println("tampered:", errors.Is(err, webhooksig.ErrMismatch))
	// Output:
	// genuine: <nil>
	// tampered: true
}
