// Package ops is payrouter's control plane: rule versions (draft, check,
// replay, shadow, activate, rollback), provider health and forced-open
// breakers, the anomaly queue, payment search and the audit log of every
// ops action, for ops keys with roles. The JSON API (/ops/v1, Handler) and
// the console (internal/console) are both thin layers over Service.
package ops

import (
	"crypto/subtle"
	"fmt"

	"github.com/payrouter/payrouter/internal/apikey"
)

// Role orders what an ops key may do.
type Role int

// Roles, lowest first: each can do what the ones below it can.
const (
	Viewer   Role = iota + 1 // reads
	Operator                 // forces breakers, resolves anomalies, redelivers
	Admin                    // creates, shadows and activates rule versions
)

// ParseRole reads viewer | operator | admin.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "operator":
		return Operator, nil
	case "admin":
		return Admin, nil
	}
	return 0, fmt.Errorf("role %q: want viewer, operator or admin", s)
}

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return "none"
}

// Actor is who does something: an ops key's id and role.
type Actor struct {
	ID   string
	Role Role
}

// KeyConfig is one configured ops key; Key is the key itself or
// "sha256:<hex>" of it (what should be at rest).
type KeyConfig struct {
	ID, Key, Role string
}

type key struct {
	actor Actor
	sum   apikey.Digest
}

// Keys authenticates ops keys. Only hashes are kept in memory.
type Keys struct{ keys []key }

// NewKeys checks and hashes the configured keys; errors name the entry.
func NewKeys(cfg []KeyConfig) (*Keys, error) {
	ks := &Keys{}
	seen := map[string]bool{}
	for i, c := range cfg {
		if c.ID == "" {
			return nil, fmt.Errorf("ops.keys[%d]: id is empty", i)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("ops.keys[%d]: id %q listed twice", i, c.ID)
		}
		seen[c.ID] = true
		role, err := ParseRole(c.Role)
		if err != nil {
			return nil, fmt.Errorf("ops.keys[%d] (%s): %w", i, c.ID, err)
		}
		if len(c.Key) < 12 {
			return nil, fmt.Errorf("ops.keys[%d] (%s): key is shorter than 12 characters", i, c.ID)
		}
		d, err := apikey.Parse(c.Key) // a plain key or sha256:<hex>, the merchants' format
		if err != nil {
			return nil, fmt.Errorf("ops.keys[%d] (%s): %w", i, c.ID, err)
		}
		ks.keys = append(ks.keys, key{actor: Actor{ID: c.ID, Role: role}, sum: d})
	}
	return ks, nil
}

// Authenticate returns the actor of token. Every key is compared, in
// constant time, so timing tells nothing about which was close.
func (ks *Keys) Authenticate(token string) (Actor, bool) {
	if ks == nil || token == "" {
		return Actor{}, false
	}
	return ks.byDigest(apikey.Hash(token))
}

// byDigest finds the actor whose key hashes to sum (constant time over
// every key).
func (ks *Keys) byDigest(sum apikey.Digest) (Actor, bool) {
	var found Actor
	ok := false
	for _, k := range ks.keys {
		if subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1 {
			found, ok = k.actor, true
		}
	}
	return found, ok
}

// Holds reports whether a key with digest d is an ops key (a merchant key
// must never be one).
func (ks *Keys) Holds(d apikey.Digest) (Actor, bool) {
	if ks == nil {
		return Actor{}, false
	}
	return ks.byDigest(d)
}

// Len is the number of keys.
func (ks *Keys) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.keys)
}
