// Package gopay is the direct GoPay adapter: GoPay's SNAP BI direct debit
// as Midtrans publishes it (https://docs.midtrans.com/reference/direct-debit-api-gopay),
// a thin mapping onto the shared SNAP client in internal/snapbi.
//
// Wire facts from the public docs: B2B token POST /v1.0/access-token/b2b
// (SHA256withRSA over clientId|timestamp); payment POST
// /v1.0/debit/payment-host-to-host (service 54) with the redirect URL array
// named "urlParam"; status /v1.0/debit/status; cancel /v1.0/debit/cancel;
// refund /v1.0/debit/refund; refund inquiry /v1.0/debit/refund-query (not
// public: SNAP BI's status shape for service 58, see
// snapbi.DirectDebit.RefundStatus). Transaction requests use the SYMMETRIC
// signature, base64(HMAC-SHA512(client secret,
// METHOD:path:accessToken:hex(sha256(body)):timestamp)), so ClientSecret
// is required. The answer carries webRedirectUrl and appRedirectUrl
// (gojek:// deeplink); we return the web redirect as the next action.
//
// Not public, so we follow SNAP BI and say so: the production host (we use
// https://merchants.midtrans.com; set BaseURL to override) and the notify
// format (SNAP finish notify, verified asymmetrically with the provider's
// public key over POST:NotifyPath:hex(sha256(body)):X-TIMESTAMP).
package gopay

import (
	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/snapbi"
)

// ProductionURL is the assumed production host of the GoPay SNAP API.
const ProductionURL = "https://merchants.midtrans.com"

// Config configures the adapter (see snapbi.AdapterConfig).
type Config = snapbi.AdapterConfig

// Wallet is GoPay's mapping onto the shared SNAP BI direct debit.
func Wallet() snapbi.Wallet {
	return snapbi.Wallet{
		Label:           "GoPay",
		Method:          payrouter.MethodGoPay,
		ProductionURL:   ProductionURL,
		AccessTokenPath: "/v1.0/access-token/b2b",
		PaymentPath:     "/v1.0/debit/payment-host-to-host",
		StatusPath:      "/v1.0/debit/status",
		CancelPath:      "/v1.0/debit/cancel",
		RefundPath:      "/v1.0/debit/refund",
		RefundQueryPath: "/v1.0/debit/refund-query",
		Scheme:          snapbi.Symmetric,
		ChannelID:       "95221",
		URLParamsField:  "urlParam",
		PartialRefund:   true,
	}
}

// Provider is the GoPay adapter: providers.Provider, StatusChecker,
// RefundStatusChecker and WebhookParser (all from snapbi.DirectDebit).
type Provider struct{ *snapbi.DirectDebit }

// New validates cfg and builds the adapter; errors name the missing
// setting.
func New(cfg Config) (*Provider, error) {
	d, err := snapbi.NewAdapter(Wallet(), "gopay", cfg)
	if err != nil {
		return nil, err
	}
	return &Provider{d}, nil
}
