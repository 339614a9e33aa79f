// Package dana is the direct DANA adapter: DANA's Payment Gateway API
// (https://dashboard.dana.id/api-docs-v2/api/payment-gateway/create-order),
// a thin mapping onto the shared SNAP client in internal/snapbi.
//
// Wire facts, checked against DANA's own SDK (github.com/dana-id/dana-go,
// payment_gateway/v1 and utils/snap_header.go) and docs: create order POST
// /payment-gateway/v1.0/debit/payment-host-to-host.htm (service 54,
// idempotent on merchantId+partnerReferenceNo); query
// /payment-gateway/v1.0/debit/status.htm; cancel …/debit/cancel.htm;
// refund …/debit/refund.htm; refund inquiry …/debit/refund-query.htm (not
// in DANA's SDK: SNAP BI's status shape for service 58, see
// snapbi.DirectDebit.RefundStatus); finish notify POSTed by DANA to the
// merchant's URL, signed asymmetrically. Payment Gateway calls carry no B2B
// access token and no Authorization header (the SDK never calls an
// access-token endpoint for them), only X-TIMESTAMP, X-PARTNER-ID,
// X-EXTERNAL-ID, CHANNEL-ID and X-SIGNATURE = SHA256withRSA over
// METHOD:path:hex(sha256(minified body)):timestamp, where path is the full
// path of the URL (a path prefix of the base URL included). Production base
// https://api.saas.dana.id (sandbox https://api.sandbox.dana.id).
//
// Create order sends what DANA's models mark required: partnerReferenceNo,
// merchantId, amount, validUpTo (at most 30 minutes ahead; we send 25),
// urlParams (so return_url is required) and additionalInfo{mcc, envInfo
// {sourcePlatform, terminalType}} plus order.orderTitle.
//
// Statuses: DANA documents latestTransactionStatus 00/01/02/05/07 for
// queries and 00/05 for finish notifies; "05" means closed, with the reason
// in additionalInfo.closeReason (query) or additionalInfo."extendInfo.
// closedReason" (notify). A notify 05 without a reason maps to expired
// ("closed because it is expired", per DANA); the same code from a query
// maps to canceled unless closeReason says EXPIRED. A refunded payment
// stays 00 at DANA (refunds are their own objects).
package dana

import (
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/snapbi"
	"github.com/payrouter/payrouter/providers"
)

// ProductionURL is DANA's production API host.
const ProductionURL = "https://api.saas.dana.id"

// SandboxURL is DANA's own sandbox host (not payrouter's simulator).
const SandboxURL = "https://api.sandbox.dana.id"

// Config configures the adapter (see snapbi.AdapterConfig). MCC is
// required; New defaults it to DefaultMCC when empty.
type Config = snapbi.AdapterConfig

// DefaultMCC is the merchant category code sent when none is configured:
// 5999 (miscellaneous retail). Configure the merchant's own (providers.
// <name>.mcc) for production.
const DefaultMCC = "5999"

// Wallet is DANA's mapping onto the shared SNAP BI direct debit.
func Wallet() snapbi.Wallet {
	return snapbi.Wallet{
		Label:                  "DANA",
		Method:                 payrouter.MethodDANA,
		ProductionURL:          ProductionURL,
		PaymentPath:            "/payment-gateway/v1.0/debit/payment-host-to-host.htm",
		StatusPath:             "/payment-gateway/v1.0/debit/status.htm",
		CancelPath:             "/payment-gateway/v1.0/debit/cancel.htm",
		RefundPath:             "/payment-gateway/v1.0/debit/refund.htm",
		RefundQueryPath:        "/payment-gateway/v1.0/debit/refund-query.htm",
		Scheme:                 snapbi.Asymmetric,
		ChannelID:              "95221",
		URLParamsField:         "urlParams",
		PartialRefund:          true,
		ClosedMeansExpired:     true,
		URLParamsRequired:      true,
		ValidFor:               25 * time.Minute,
		OrderIDRequired:        true,
		NeedsMCC:               true,
		NotifyCloseReasonField: "extendInfo.closedReason",
		StatusCloseReasonField: "closeReason",
		AdditionalInfo: func(req *providers.AuthorizeRequest, mcc string) map[string]any {
			title := req.Description
			if title == "" {
				title = "Order " + req.OrderID()
			}
			return map[string]any{
				"mcc":     mcc,
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
	if cfg.MCC == "" {
		cfg.MCC = DefaultMCC
	}
	d, err := snapbi.NewAdapter(Wallet(), "dana", cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{d}, nil
}
