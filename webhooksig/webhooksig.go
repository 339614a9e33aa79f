// Package webhooksig signs and verifies payrouter's merchant webhooks.
// Merchants import it to check that a webhook really comes from their
// payrouter and is fresh:
//
//	body, _ := io.ReadAll(r.Body) // the raw body, before any JSON decoding
//	err := webhooksig.Verify(r.Header.Get(webhooksig.Header), body, secret, 5*time.Minute, time.Now())
//	if err != nil { http.Error(w, "bad signature", http.StatusUnauthorized); return }
//
// The header is
//
//	Payrouter-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// Several v1= entries may appear (for example while a secret is rotated);
// the webhook is genuine when any of them matches. The package has no
// dependencies beyond the standard library.
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the name of the signature header.
const Header = "Payrouter-Signature"

// DefaultTolerance is the age (either way) Verify accepts when given a
// tolerance of 0.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify; test with errors.Is. Every one means: refuse
// the webhook (answer 4xx) — payrouter will retry a genuine one.
var (
	// ErrMissingHeader: the header is empty.
	ErrMissingHeader = errors.New("webhooksig: missing " + Header + " header")
	// ErrMalformedHeader: no single integer t= or no hex v1= entry.
	ErrMalformedHeader = errors.New("webhooksig: malformed " + Header + " header")
	// ErrNoSecret: the verifier was given an empty secret.
	ErrNoSecret = errors.New("webhooksig: empty secret")
	// ErrTooOld: the timestamp is further from now than the tolerance; a
	// replay of an old webhook looks like this.
	ErrTooOld = errors.New("webhooksig: timestamp outside the tolerance")
	// ErrMismatch: no v1 signature matches the body and secret.
	ErrMismatch = errors.New("webhooksig: signature does not match")
)

// Sign returns the hex HMAC-SHA256 of "<t>.<body>" under secret: the v1
// value of the header.
func Sign(secret string, t time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// HeaderValue returns the full header value for body signed at t.
func HeaderValue(secret string, t time.Time, body []byte) string {
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), Sign(secret, t, body))
}

// Parsed is a decoded header.
type Parsed struct {
	Timestamp  time.Time
	Signatures [][]byte // every v1 entry, decoded
}

// Parse decodes a header value. It returns ErrMissingHeader or
// ErrMalformedHeader. Unknown keys (future schemes) are ignored.
func Parse(header string) (*Parsed, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, ErrMissingHeader
	}
	var (
		p     Parsed
		times int
	)
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, ErrMalformedHeader
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, ErrMalformedHeader
			}
			p.Timestamp = time.Unix(n, 0)
			times++
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return nil, ErrMalformedHeader
			}
			p.Signatures = append(p.Signatures, sig)
		}
	}
	// Exactly one t: with several, which one was signed would be ambiguous
	// and a fresh one could launder a replayed signature.
	if times != 1 || len(p.Signatures) == 0 {
		return nil, ErrMalformedHeader
	}
	return &p, nil
}

// Verify checks header (the Payrouter-Signature value) against the raw
// body: the timestamp must be within tolerance of now (0 means
// DefaultTolerance; a negative tolerance skips the check, for replaying
// stored webhooks in tests only) and one v1 entry must equal
// Sign(secret, t, body), compared in constant time. It returns nil or one
// of the errors above (errors.Is).
func Verify(header string, body []byte, secret string, tolerance time.Duration, now time.Time) error {
	if secret == "" {
		return ErrNoSecret
	}
	p, err := Parse(header)
	if err != nil {
		return err
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if tolerance > 0 {
		if d := now.Sub(p.Timestamp); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w (%s old, tolerance %s)", ErrTooOld, d.Truncate(time.Second), tolerance)
		}
	}
	want, _ := hex.DecodeString(Sign(secret, p.Timestamp, body))
	for _, sig := range p.Signatures {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrMismatch
}
