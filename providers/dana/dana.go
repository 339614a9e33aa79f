// Package dana is the direct DANA adapter: DANA's Payment Gateway SNAP BI
// API (https://dashboard.dana.id/api-docs-v2/api/payment-gateway/create-order),
// a thin mapping onto the shared SNAP client in internal/snapbi.
//
// Wire facts from DANA's public docs: access token POST
// /v1.0/access-token/b2b.htm; create order POST
// /payment-gateway/v1.0/debit/payment-host-to-host.htm (service 54,
// idempotent on merchantId+partnerReferenceNo); query
// /payment-gateway/v1.0/debit/status.htm; cancel …/debit/cancel.htm;
// refund …/debit/refund.htm; refund inquiry …/debit/refund-query.htm (not
// in DANA's SDK: SNAP BI's status shape for service 58, see
// snapbi.DirectDebit.RefundStatus); finish notify POSTed by DANA to the merchant's
// URL (documented as /v1.0/debit/notify), signed asymmetrically. Requests
// are signed SHA256withRSA over METHOD:path:hex(sha256(body)):timestamp.
// Production base https://api.saas.dana.id (sandbox
// https://api.sandbox.dana.id).
//
// Status "05" in a finish notify means, per DANA, "closed because it is
// expired", so a notify 05 without a closeReason maps to expired; the
// same code from a status query maps to canceled unless closeReason says
// EXPIRED. DANA's create-order additionalInfo (order, envInfo, mcc) is
// filled with minimal values; which fields DANA requires depends on the
// merchant's product and is not fully public — we follow SNAP here.
package dana

import (
	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/snapbi"
	"github.com/payrouter/payrouter/providers"
)

// ProductionURL is DANA's production API host.
const ProductionURL = "https://api.saas.dana.id"

// SandboxURL is DANA's own sandbox host (not payrouter's simulator).
const SandboxURL = "https://api.sandbox.dana.id"

// Config configures the adapter (see snapbi.AdapterConfig).
type Config = snapbi.AdapterConfig

// Wallet is DANA's mapping onto the shared SNAP BI direct debit.
func Wallet() snapbi.Wallet {
	return snapbi.Wallet{
		Label:              "DANA",
		Method:             payrouter.MethodDANA,
		ProductionURL:      ProductionURL,
		AccessTokenPath:    "/v1.0/access-token/b2b.htm",
		PaymentPath:        "/payment-gateway/v1.0/debit/payment-host-to-host.htm",
		StatusPath:         "/payment-gateway/v1.0/debit/status.htm",
		CancelPath:         "/payment-gateway/v1.0/debit/cancel.htm",
		RefundPath:         "/payment-gateway/v1.0/debit/refund.htm",
		RefundQueryPath:    "/payment-gateway/v1.0/debit/refund-query.htm",
		Scheme:             snapbi.Asymmetric,
		ChannelID:          "95221",
		URLParamsField:     "urlParams",
		PartialRefund:      true,
		ClosedMeansExpired: true,
		AdditionalInfo: func(req *providers.AuthorizeRequest) map[string]any {
			title := req.Description
			if title == "" {
				title = "Order " + req.OrderID()
			}
			return map[string]any{
				"order":   map[string]any{"orderTitle": title, "scenario": "REDIRECT"},
				"envInfo": map[string]any{"sourcePlatform": "IPG", "terminalType": "SYSTEM"},
			}
		},
	}
}

// Provider is the DANA adapter: providers.Provider, StatusChecker,
// RefundStatusChecker and WebhookParser (all from snapbi.DirectDebit).
type Provider struct{ *snapbi.DirectDebit }

// New validates cfg and builds the adapter; errors name the missing
// setting.
func New(cfg Config) (*Provider, error) {
	d, err := snapbi.NewAdapter(Wallet(), "dana", cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{d}, nil
}
