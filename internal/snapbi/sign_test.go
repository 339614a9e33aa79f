package snapbi

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readTestdata(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// The vectors in testdata were made by openssl (see testdata/README.md),
// so these tests check our signer against an independent implementation
// byte for byte: RSASSA-PKCS1-v1_5 and HMAC are deterministic.
func TestSignersMatchOpenSSL(t *testing.T) {
	priv, err := LoadPrivateKey(filepath.Join("testdata", "TEST-ONLY-partner-pkcs1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(filepath.Join("testdata", "TEST-ONLY-partner-public.pem"))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(readTestdata(t, "vector-body.json"))
	const ts = "2024-12-23T09:10:11+07:00"

	t.Run("string to sign", func(t *testing.T) {
		got, err := StringToSign("post", "/payment-gateway/v1.0/debit/payment-host-to-host.htm", body, ts)
		if err != nil {
			t.Fatal(err)
		}
		if want := readTestdata(t, "vector-string-to-sign.txt"); got != want {
			t.Errorf("StringToSign = %q, want %q", got, want)
		}
		// A pretty-printed body hashes as its minified form.
		pretty := []byte(strings.ReplaceAll(string(body), ",", ",\n  "))
		got2, _ := StringToSign("POST", "/payment-gateway/v1.0/debit/payment-host-to-host.htm", pretty, ts)
		if got2 != got {
			t.Errorf("pretty body string to sign = %q, want %q", got2, got)
		}
	})
	t.Run("asymmetric transaction", func(t *testing.T) {
		sts := readTestdata(t, "vector-string-to-sign.txt")
		got, err := SignRSA(priv, sts)
		if err != nil {
			t.Fatal(err)
		}
		if want := readTestdata(t, "vector-signature-rsa.txt"); got != want {
			t.Errorf("SignRSA = %q, want openssl's %q", got, want)
		}
		if err := VerifyRSA(pub, sts, got); err != nil {
			t.Errorf("VerifyRSA(own signature) = %v", err)
		}
		if err := VerifyRSA(pub, sts+"x", got); err == nil {
			t.Error("VerifyRSA accepted a signature over another string")
		}
	})
	t.Run("access token", func(t *testing.T) {
		got, err := SignRSA(priv, AccessTokenStringToSign("TEST-CLIENT", ts))
		if err != nil {
			t.Fatal(err)
		}
		if want := readTestdata(t, "vector-signature-token.txt"); got != want {
			t.Errorf("token signature = %q, want openssl's %q", got, want)
		}
	})
	t.Run("symmetric transaction", func(t *testing.T) {
		sts, err := SymmetricStringToSign("POST", "/v1.0/debit/payment-host-to-host", "tok_abc", body, ts)
		if err != nil {
			t.Fatal(err)
		}
		if want := readTestdata(t, "vector-string-to-sign-symmetric.txt"); sts != want {
			t.Fatalf("SymmetricStringToSign = %q, want %q", sts, want)
		}
		got := SignHMAC("TEST-ONLY-client-secret", sts)
		if want := readTestdata(t, "vector-signature-hmac.txt"); got != want {
			t.Errorf("SignHMAC = %q, want openssl's %q", got, want)
		}
		if err := VerifyHMAC("TEST-ONLY-client-secret", sts, got); err != nil {
			t.Errorf("VerifyHMAC = %v", err)
		}
		if err := VerifyHMAC("other-secret", sts, got); err == nil {
			t.Error("VerifyHMAC accepted the wrong secret")
		}
	})
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2024, 12, 23, 2, 10, 11, 999, time.UTC), "2024-12-23T09:10:11+07:00"},
		{time.Date(2024, 12, 31, 20, 0, 0, 0, time.UTC), "2025-01-01T03:00:00+07:00"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := Timestamp(tt.in)
			if got != tt.want {
				t.Fatalf("Timestamp = %q, want %q", got, tt.want)
			}
			back, err := ParseTimestamp(got)
			if err != nil || !back.Equal(tt.in.Truncate(time.Second)) {
				t.Errorf("ParseTimestamp(%q) = %v, %v; want %v", got, back, err, tt.in.Truncate(time.Second))
			}
		})
	}
	if _, err := ParseTimestamp("2024-12-23 09:10:11"); err == nil {
		t.Error("ParseTimestamp accepted a timestamp without offset")
	}
}

func TestExternalID(t *testing.T) {
	digits := regexp.MustCompile(`^[0-9]{36}$`)
	a := ExternalID("payment", "pay_1_a1")
	tests := []struct {
		name string
		id   string
	}{
		{"derived", a},
		{"random", RandomExternalID()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !digits.MatchString(tt.id) {
				t.Errorf("external id %q is not 36 digits", tt.id)
			}
		})
	}
	if b := ExternalID("payment", "pay_1_a1"); b != a {
		t.Errorf("ExternalID not deterministic: %q then %q", a, b)
	}
	if b := ExternalID("refund", "pay_1_a1"); b == a {
		t.Errorf("ExternalID ignores the operation: %q", b)
	}
	if b := ExternalID("payment", "pay_1_a2"); b == a {
		t.Errorf("ExternalID ignores the key: %q", b)
	}
}

func TestMinifyRejectsInvalidJSON(t *testing.T) {
	if _, err := Minify([]byte(`{"a":`)); err == nil {
		t.Error("Minify accepted invalid JSON")
	}
	got, err := Minify([]byte("{ \"a\" : [1, 2] }\n"))
	if err != nil || string(got) != `{"a":[1,2]}` {
		t.Errorf("Minify = %q, %v", got, err)
	}
}
