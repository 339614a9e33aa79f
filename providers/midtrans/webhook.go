package midtrans

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// SignatureKey is Midtrans' notification signature:
// lowercase hex(SHA-512(order_id + status_code + gross_amount + server_key)),
// over the exact strings of the notification (gross_amount as sent, e.g.
// "100000.00"). The SDK has no helper for it.
func SignatureKey(orderID, statusCode, grossAmount, serverKey string) string {
	sum := sha512.Sum512([]byte(orderID + statusCode + grossAmount + serverKey))
	return hex.EncodeToString(sum[:])
}

// notification is the HTTP notification body: only the fields payrouter
// reads. The signed fields are kept as the exact strings received.
type notification struct {
	TransactionTime     string `json:"transaction_time"`
	TransactionStatus   string `json:"transaction_status"`
	TransactionID       string `json:"transaction_id"`
	StatusMessage       string `json:"status_message"`
	StatusCode          string `json:"status_code"`
	SignatureKey        string `json:"signature_key"`
	SettlementTime      string `json:"settlement_time"`
	PaymentType         string `json:"payment_type"`
	OrderID             string `json:"order_id"`
	GrossAmount         string `json:"gross_amount"`
	FraudStatus         string `json:"fraud_status"`
	Currency            string `json:"currency"`
	ChannelResponseCode string `json:"channel_response_code"`
	RefundAmount        string `json:"refund_amount"`
	Refunds             []struct {
		RefundChargebackUUID string `json:"refund_chargeback_uuid"`
		RefundAmount         string `json:"refund_amount"`
		RefundKey            string `json:"refund_key"`
		CreatedAt            string `json:"created_at"`
	} `json:"refunds"`
}

// ParseWebhook verifies a Midtrans HTTP notification and normalizes it.
//
// Verification: signature_key must equal SignatureKey over the received
// order_id, status_code and gross_amount with the configured server key
// (constant-time compare); anything missing or different is a
// providers.SignatureError, so a forged status or a tampered amount is
// refused. Midtrans signs no timestamp, so staleness cannot be checked here;
// Notification.ConfirmByStatus is set because Midtrans recommends confirming
// every notification with GET /v2/{order_id}/status.
//
// The signature covers order_id, status_code and gross_amount only:
// transaction_status, fraud_status, transaction_id and the refunds are
// claims, which the router confirms by a status query before acting
// (ConfirmByStatus, for successes and failures alike).
//
// Midtrans has no notification id: EventID is a hash of the signed fields
// (order_id, status_code, gross_amount) and of the claim (transaction_status,
// fraud_status and, for refunds, the refund key and amount), so repeated
// deliveries of one change share an id, another amount never shares it, and
// unsigned details outside the claim (transaction_id, times) cannot mint new
// ids. A relabelled claim gets an id of its own; it cannot shadow the genuine
// notification, whose claim differs, and is applied only as far as the
// status query bears it out. Amount is in payrouter
// minor units, parsed exactly from gross_amount (refund notifications carry
// the refund's amount). A refund notification with a refunds[] entry is
// KindRefund (RefundID = refund_key, which payrouter sets to its refund id);
// other refund/partial_refund notifications are KindPayment with the
// refunded status. Unknown transaction statuses leave Status "".
func (p *Provider) ParseWebhook(h http.Header, body []byte, now time.Time) (*providers.Notification, error) {
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, providers.SignatureError("midtrans notification is not valid JSON")
	}
	if n.OrderID == "" || n.StatusCode == "" || n.GrossAmount == "" || n.SignatureKey == "" {
		return nil, providers.SignatureError("midtrans notification lacks order_id, status_code, gross_amount or signature_key")
	}
	want := SignatureKey(n.OrderID, n.StatusCode, n.GrossAmount, p.cfg.ServerKey)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(n.SignatureKey)), []byte(want)) != 1 {
		return nil, providers.SignatureError("midtrans notification signature_key does not match")
	}
	cur := payrouter.Currency("IDR")
	if n.Currency != "" {
		c, err := payrouter.ParseCurrency(n.Currency)
		if err != nil {
			return nil, providers.Errorf(providers.Invalid, "invalid_notification", "midtrans notification currency %q is unknown", n.Currency)
		}
		cur = c
	}
	amount, err := decimalAmount(n.GrossAmount, cur)
	if err != nil {
		return nil, providers.Errorf(providers.Invalid, "invalid_notification", "midtrans gross_amount %q: %v", n.GrossAmount, err)
	}
	out := &providers.Notification{
		Provider:          p.cfg.Name,
		Kind:              providers.KindPayment,
		ProviderPaymentID: n.TransactionID,
		OrderID:           n.OrderID,
		Status:            MapStatus(n.TransactionStatus, n.FraudStatus),
		ProviderStatus:    n.TransactionStatus,
		Amount:            amount,
		Currency:          cur,
		ConfirmByStatus:   true,
	}
	if n.FraudStatus != "" {
		out.ProviderStatus += "/" + n.FraudStatus
	}
	if out.Status == payrouter.StatusFailed {
		out.Failure = failure(n.TransactionStatus, n.FraudStatus, n.StatusCode, n.ChannelResponseCode, n.StatusMessage)
	}
	var refundKey, refundAmount string
	if (n.TransactionStatus == "refund" || n.TransactionStatus == "partial_refund") && len(n.Refunds) > 0 {
		last := n.Refunds[len(n.Refunds)-1]
		refundKey, refundAmount = last.RefundKey, last.RefundAmount
		ra, err := decimalAmount(last.RefundAmount, cur)
		if err != nil {
			return nil, providers.Errorf(providers.Invalid, "invalid_notification", "midtrans refund_amount %q: %v", last.RefundAmount, err)
		}
		out.Kind = providers.KindRefund
		out.Amount = ra
		out.RefundID = last.RefundKey
		out.ProviderRefundID = last.RefundChargebackUUID
		out.RefundStatus = payrouter.RefundSucceeded
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{n.OrderID, n.StatusCode, n.GrossAmount, n.TransactionStatus, n.FraudStatus, refundKey, refundAmount}, "\x00")))
	out.EventID = "mtn_" + hex.EncodeToString(sum[:16])
	return out, nil
}

// decimalAmount parses a two-decimal Midtrans amount into minor units of cur.
func decimalAmount(s string, cur payrouter.Currency) (int64, error) {
	n, err := payrouter.ParseDecimal(s, 2)
	if err != nil {
		return 0, err
	}
	return payrouter.ScaleAmount(n, 2, cur.Exponent())
}
