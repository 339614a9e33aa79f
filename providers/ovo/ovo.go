// Package ovo is the direct OVO adapter: OVO's SNAP BI payment API
// (https://ovo.id/partner-integration/payment-api/tech-doc), a thin mapping
// onto the shared SNAP client in internal/snapbi.
//
// Wire facts from OVO's public docs: B2B token POST
// /OVOSNAP/v1.0/access-token/b2b; direct debit POST
// /OVOSNAP/v2.0/debit/payment-host-to-host; refund /OVOSNAP/v2.0/debit/refund;
// status /OVOSNAP/v2.0/debit/status; refund inquiry
// /OVOSNAP/v2.0/debit/refund-query (not public: SNAP BI's status shape for
// service 58, see snapbi.DirectDebit.RefundStatus); hosts https://apigw.ovo.id
// (production), https://app.byte-stack.net (staging). OVO publishes no
// cancel endpoint: Cancel returns an Invalid "unsupported" error and an
// unpaid payment lapses at its expiry.
//
// Not public, so we follow SNAP BI and say so: OVO's direct debit is
// documented with a B2B2C customer token from account binding; this
// adapter implements the unbound push-to-phone flow with the B2B token,
// sending the customer's phone as additionalInfo.phoneNumber (required:
// Authorize refuses with Invalid "phone_required" without one). The
// notification format is SNAP's finish notify verified with OVO's public
// key. Partial refunds are not documented publicly, so Capabilities says
// refunds yes, partial refunds no. The next action is the wallet's
// webRedirectUrl / appRedirectUrl when it returns one, else the payment is
// processing (the customer approves the push in the OVO app).
package ovo

import (
	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/snapbi"
)

// ProductionURL is OVO's production API gateway.
const ProductionURL = "https://apigw.ovo.id"

// StagingURL is OVO's own staging host (not payrouter's simulator).
const StagingURL = "https://app.byte-stack.net"

// Config configures the adapter (see snapbi.AdapterConfig).
type Config = snapbi.AdapterConfig

// Wallet is OVO's mapping onto the shared SNAP BI direct debit.
func Wallet() snapbi.Wallet {
	return snapbi.Wallet{
		Label:           "OVO",
		Method:          payrouter.MethodOVO,
		ProductionURL:   ProductionURL,
		AccessTokenPath: "/OVOSNAP/v1.0/access-token/b2b",
		PaymentPath:     "/OVOSNAP/v2.0/debit/payment-host-to-host",
		StatusPath:      "/OVOSNAP/v2.0/debit/status",
		RefundPath:      "/OVOSNAP/v2.0/debit/refund",
		RefundQueryPath: "/OVOSNAP/v2.0/debit/refund-query",
		Scheme:          snapbi.Asymmetric,
		ChannelID:       "95221",
		URLParamsField:  "urlParams",
		NeedsPhone:      true,
	}
}

// Provider is the OVO adapter: providers.Provider, StatusChecker,
// RefundStatusChecker and WebhookParser (all from snapbi.DirectDebit).
type Provider struct{ *snapbi.DirectDebit }

// New validates cfg and builds the adapter; errors name the missing
// setting.
func New(cfg Config) (*Provider, error) {
	d, err := snapbi.NewAdapter(Wallet(), "ovo", cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{d}, nil
}
