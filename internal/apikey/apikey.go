// Package apikey holds API keys as SHA-256 digests: parsing the config forms
// (a plain key, or "sha256:<hex>" of one), hashing a presented key once,
// and an O(1) set that maps a presented key to its owner, honouring an
// optional expiry. Merchant keys and ops keys both use it, so a plain key
// lives only as long as it takes to hash it.
package apikey

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix marks a key given by its digest in config.
const Prefix = "sha256:"

// Digest is the SHA-256 of a key.
type Digest [sha256.Size]byte

// Hash digests a plain key.
func Hash(key string) Digest { return sha256.Sum256([]byte(key)) }

// String is the config form "sha256:<hex>"; a digest is not a secret.
func (d Digest) String() string { return Prefix + hex.EncodeToString(d[:]) }

// ErrMalformed is returned by Parse for a "sha256:" value that is not 64
// hex digits.
var ErrMalformed = errors.New("a hashed key is sha256: followed by 64 hex digits")

// Parse reads a key as configured: "sha256:<64 hex>" is a digest, anything
// else is a plain key and is hashed. An empty key is an error.
func Parse(s string) (Digest, error) {
	if s == "" {
		return Digest{}, errors.New("empty key")
	}
	h, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return Hash(s), nil
	}
	var d Digest
	if len(h) != hex.EncodedLen(len(d)) {
		return Digest{}, ErrMalformed
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return Digest{}, ErrMalformed
	}
	return d, nil
}

// Match reports in constant time whether key hashes to d.
func Match(key string, d Digest) bool {
	h := Hash(key)
	return subtle.ConstantTimeCompare(h[:], d[:]) == 1
}

// Entry is one active key of an owner.
type Entry struct {
	Owner string
	// ExpiresAt: the key is refused from this instant on; zero never expires.
	ExpiresAt time.Time
}

// Set maps key digests to their owners. Build it once; it is safe for
// concurrent reads.
type Set struct {
	m map[Digest]Entry
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{m: map[Digest]Entry{}} }

// Add registers a digest. A digest already held by another owner is an
// error (one key, one owner); the same owner twice keeps the later expiry.
func (s *Set) Add(d Digest, e Entry) error {
	old, ok := s.m[d]
	switch {
	case !ok:
		s.m[d] = e
	case old.Owner != e.Owner:
		return fmt.Errorf("key %s also belongs to %s", d, old.Owner)
	case !old.ExpiresAt.IsZero() && (e.ExpiresAt.IsZero() || e.ExpiresAt.After(old.ExpiresAt)):
		s.m[d] = e
	}
	return nil
}

// Len is the number of keys held.
func (s *Set) Len() int { return len(s.m) }

// Lookup hashes the presented key once and returns its owner, if the key
// is known and not expired at now. The map is keyed by the digest, so the
// time taken does not depend on how much of a key matches.
func (s *Set) Lookup(key string, now time.Time) (Entry, bool) {
	if key == "" {
		return Entry{}, false
	}
	e, ok := s.m[Hash(key)]
	if !ok || (!e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt)) {
		return Entry{}, false
	}
	return e, true
}
