package apikey

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	plain := Hash("sk_live_1")
	tests := []struct {
		in      string
		want    Digest
		wantErr bool
	}{
		{"sk_live_1", plain, false},
		{plain.String(), plain, false},
		{Prefix + strings.ToUpper(plain.String()[len(Prefix):]), plain, false}, // hex digits in either case
		{Prefix + "abc", Digest{}, true},
		{Prefix + strings.Repeat("zz", 32), Digest{}, true},
		{"", Digest{}, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Parse(%q) = %s, %v; want %s, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if _, err := Parse(Prefix + "00"); !errors.Is(err, ErrMalformed) {
		t.Errorf("short digest: err = %v, want ErrMalformed", err)
	}
}

func TestDigestStringRoundTrip(t *testing.T) {
	d := Hash("ok_sandbox_admin")
	s := d.String()
	if !strings.HasPrefix(s, "sha256:") || len(s) != len("sha256:")+64 {
		t.Fatalf("String() = %q", s)
	}
	back, err := Parse(s)
	if err != nil || back != d {
		t.Fatalf("Parse(String()) = %s, %v; want %s", back, err, d)
	}
	// The well-known SHA-256 of "abc" pins the encoding.
	if got := Hash("abc").String(); got != "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Hash(abc) = %s", got)
	}
}

func TestMatch(t *testing.T) {
	d := Hash("k1")
	if !Match("k1", d) || Match("k2", d) || Match("", d) {
		t.Error("Match does not tell k1 from k2")
	}
}

func TestSetLookupExpiryAndRotation(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := NewSet()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Rotation: the old key expires tomorrow, the new one is already live.
	must(s.Add(Hash("old"), Entry{Owner: "demo", ExpiresAt: now.Add(24 * time.Hour)}))
	must(s.Add(Hash("new"), Entry{Owner: "demo"}))
	must(s.Add(Hash("other"), Entry{Owner: "acme"}))
	tests := []struct {
		key   string
		at    time.Time
		owner string
		ok    bool
	}{
		{"old", now, "demo", true},
		{"new", now, "demo", true},
		{"other", now, "acme", true},
		{"old", now.Add(24*time.Hour - time.Nanosecond), "demo", true},
		{"old", now.Add(24 * time.Hour), "", false}, // expires_at is the first refused instant
		{"new", now.Add(1000 * time.Hour), "demo", true},
		{"nope", now, "", false},
		{"", now, "", false},
	}
	for _, tt := range tests {
		e, ok := s.Lookup(tt.key, tt.at)
		if ok != tt.ok || e.Owner != tt.owner {
			t.Errorf("Lookup(%q, %s) = %q, %v; want %q, %v", tt.key, tt.at, e.Owner, ok, tt.owner, tt.ok)
		}
	}
}

func TestSetAdd(t *testing.T) {
	s := NewSet()
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Add(Hash("k"), Entry{Owner: "a", ExpiresAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(Hash("k"), Entry{Owner: "b"}); err == nil || !strings.Contains(err.Error(), "also belongs to a") {
		t.Errorf("shared key: err = %v", err)
	}
	// The same key twice for one owner (plain and hashed): the longer life wins.
	if err := s.Add(Hash("k"), Entry{Owner: "a"}); err != nil {
		t.Fatal(err)
	}
	if e, ok := s.Lookup("k", t0.Add(time.Hour)); !ok || e.Owner != "a" {
		t.Errorf("never-expiring duplicate did not win: %v %v", e, ok)
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d, want 1", s.Len())
	}
}

func BenchmarkLookup(b *testing.B) {
	s := NewSet()
	for i := range 10000 {
		_ = s.Add(Hash("key"+string(rune('a'+i%26))+strings.Repeat("x", i%50)), Entry{Owner: "m"})
	}
	_ = s.Add(Hash("sk_live_target"), Entry{Owner: "demo"})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Lookup("sk_live_target", now); !ok {
			b.Fatal("not found")
		}
	}
}
