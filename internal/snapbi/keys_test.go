package snapbi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join("testdata", "TEST-ONLY-partner-public.pem")
	tests := []struct {
		name    string
		path    string
		private bool
		wantErr bool
	}{
		{"pkcs1 private", filepath.Join("testdata", "TEST-ONLY-partner-pkcs1.pem"), true, false},
		{"pkcs8 private", filepath.Join("testdata", "TEST-ONLY-partner-pkcs8.pem"), true, false},
		{"pkix public", pub, false, false},
		{"public as private", pub, true, true},
		{"private as public", filepath.Join("testdata", "TEST-ONLY-partner-pkcs1.pem"), false, true},
		{"missing file", filepath.Join(dir, "nope.pem"), true, true},
		{"garbage", garbage, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.private {
				_, err = LoadPrivateKey(tt.path)
			} else {
				_, err = LoadPublicKey(tt.path)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the file %s", err, tt.path)
			}
		})
	}
	// Both private encodings are the same key, whose public half is the PKIX file.
	k1, _ := LoadPrivateKey(filepath.Join("testdata", "TEST-ONLY-partner-pkcs1.pem"))
	k8, _ := LoadPrivateKey(filepath.Join("testdata", "TEST-ONLY-partner-pkcs8.pem"))
	p, _ := LoadPublicKey(pub)
	if !k1.Equal(k8) || !k1.PublicKey.Equal(p) {
		t.Error("PKCS#1, PKCS#8 and PKIX files do not hold the same key pair")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	partner, wallet, err := GenerateSandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	if partner.Equal(wallet) || partner.N.BitLen() != 2048 {
		t.Fatalf("sandbox keys: equal=%v bits=%d", partner.Equal(wallet), partner.N.BitLen())
	}
	pb, err := EncodePrivateKey(partner)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePrivateKey(pb)
	if err != nil || !got.Equal(partner) {
		t.Errorf("private round trip: %v", err)
	}
	ub, err := EncodePublicKey(&wallet.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	gp, err := ParsePublicKey(ub)
	if err != nil || !gp.Equal(&wallet.PublicKey) {
		t.Errorf("public round trip: %v", err)
	}
}
