package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// The ops control plane's state: rule versions, the audit log, breaker
// overrides and anomaly resolutions. Each is its own small interface, which
// the SQL stores implement beside Store, so that consumers (internal/ops)
// ask only for what they use.

// Rule version states.
const (
	RuleDraft   = "draft"
	RuleActive  = "active"
	RuleRetired = "retired"
)

// ErrVersionConflict: another writer took the version number; retry.
var ErrVersionConflict = errors.New("store: rule version taken")

// RuleVersion is one stored version of the rules, default and fees sections.
type RuleVersion struct {
	Version     int64
	State       string // draft | active | retired
	YAML        string
	CreatedAt   time.Time
	CreatedBy   string // ops key id, or "config" for the seed
	Reason      string
	ActivatedAt *time.Time
	Shadow      bool // evaluated beside the active version on live traffic
}

// RuleVersions keeps rule versions; exactly one is active once seeded.
type RuleVersions interface {
	// CreateRuleVersion stores v as the next version (sets v.Version).
	CreateRuleVersion(ctx context.Context, v *RuleVersion) error
	// SeedRuleVersion stores v as version 1, active, when the store holds
	// no version yet; it returns false (storing nothing) otherwise, so
	// instances starting together seed once.
	SeedRuleVersion(ctx context.Context, v *RuleVersion) (bool, error)
	// GetRuleVersion reads one; a missing one is payrouter.ErrNotExist.
	GetRuleVersion(ctx context.Context, version int64) (*RuleVersion, error)
	// ListRuleVersions lists every version, newest first.
	ListRuleVersions(ctx context.Context) ([]RuleVersion, error)
	// ActiveRuleVersion is the active version (ErrNotExist before the seed)
	// and the shadow version (nil when none): what every instance polls.
	ActiveRuleVersion(ctx context.Context) (active, shadow *RuleVersion, err error)
	// ActivateRuleVersion makes version active and the previous active one
	// retired, in one transaction; it also ends any shadow of version.
	ActivateRuleVersion(ctx context.Context, version int64, now time.Time) error
	// ShadowRuleVersion makes version the only shadowed one (0: none).
	ShadowRuleVersion(ctx context.Context, version int64) error
}

// AuditEntry is one ops action.
type AuditEntry struct {
	ID     int64           `json:"id"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"` // ops key id
	Action string          `json:"action"`
	Object string          `json:"object"`
	Reason string          `json:"reason"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// AuditLog is append-only.
type AuditLog interface {
	// AppendAudit stores e and sets e.ID.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit lists entries newest first; limit <= 0 means 100.
	ListAudit(ctx context.Context, limit int) ([]AuditEntry, error)
}

// BreakerOverride forces the breaker of provider × method open.
type BreakerOverride struct {
	Provider string    `json:"provider"`
	Method   string    `json:"method"` // a method, or "*" for all
	Reason   string    `json:"reason"`
	Actor    string    `json:"actor"`
	At       time.Time `json:"at"`
}

// BreakerOverrides keeps the forced-open breakers that every instance
// sharing the store honours (when Redis is not configured).
type BreakerOverrides interface {
	// SetBreakerOverride stores o, replacing one for the same key.
	SetBreakerOverride(ctx context.Context, o BreakerOverride) error
	// ClearBreakerOverride removes it (no error when there is none).
	ClearBreakerOverride(ctx context.Context, provider, method string) error
	ListBreakerOverrides(ctx context.Context) ([]BreakerOverride, error)
}

// AnomalyResolution is ops' note closing an anomaly.
type AnomalyResolution struct {
	AnomalyID  int64     `json:"-"`
	Note       string    `json:"note"`
	Actor      string    `json:"actor"`
	ResolvedAt time.Time `json:"resolved_at"`
}

// AnomalyResolutions records which anomalies ops resolved.
type AnomalyResolutions interface {
	// ResolveAnomaly records r; resolving twice keeps the first (returns
	// false); a missing anomaly is payrouter.ErrNotExist.
	ResolveAnomaly(ctx context.Context, r AnomalyResolution) (bool, error)
	// AnomalyResolutions returns the resolutions of the given anomalies.
	AnomalyResolutions(ctx context.Context, ids []int64) (map[int64]AnomalyResolution, error)
}

// PaymentCount is the number of payments in one provider × method × status.
type PaymentCount struct {
	Provider, Method, Status string
	N                        int64
}

// Stats are store-wide figures for alerts (every instance sees the same).
type Stats struct {
	Payments []PaymentCount
	// Failovers counts attempts after a payment's first, by the provider
	// they went to.
	Failovers map[string]int64
	// ResolverDue: payments the resolver should look at now.
	ResolverDue  int64
	InboxBacklog int64
	// Merchant webhook deliveries.
	DeliveriesPending, DeliveriesDead int64
	OldestPending                     *time.Time // created_at of the oldest pending delivery
	AnomaliesOpen                     int64
}

// StatsReader computes Stats.
type StatsReader interface {
	Stats(ctx context.Context, now time.Time) (*Stats, error)
}
