package xendit

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

var _ providers.SettlementLister = (*Provider)(nil)

// transaction is Xendit's TransactionResponse (balance_and_transaction in
// xendit-go), the fields payrouter reads. Amounts are decimal major units,
// read exactly.
type transaction struct {
	ID                      string      `json:"id"`
	ProductID               string      `json:"product_id"`
	Type                    string      `json:"type"`
	Status                  string      `json:"status"`
	ChannelCategory         string      `json:"channel_category"`
	ChannelCode             *string     `json:"channel_code"`
	ReferenceID             string      `json:"reference_id"`
	Currency                string      `json:"currency"`
	Amount                  json.Number `json:"amount"`
	Cashflow                string      `json:"cashflow"`
	SettlementStatus        *string     `json:"settlement_status"`
	EstimatedSettlementTime *time.Time  `json:"estimated_settlement_time"`
	Fee                     struct {
		XenditFee     json.Number `json:"xendit_fee"`
		ValueAddedTax json.Number `json:"value_added_tax"`
	} `json:"fee"`
	Created time.Time `json:"created"`
}

type transactionList struct {
	HasMore bool          `json:"has_more"`
	Data    []transaction `json:"data"`
}

// pageSize is the largest page GET /transactions serves.
const pageSize = 50

// Settlements lists the account's successful transactions created in
// [from, to) through GET /transactions (created[gte], created[lte], limit
// and the after_id cursor, as xendit-go's GetAllTransactions sends them),
// following has_more to the last page. Amount is positive for money in
// (payments) and negative for money out (refunds); Fee is xendit_fee +
// value_added_tax (what Xendit deducts); Net = Amount − Fee. Status is
// settlement_status (PENDING or SETTLED); SettledAt is
// estimated_settlement_time, else created. A PAYMENT's ProviderPaymentID is
// its product_id and its OrderID the reference_id (payrouter's order id);
// a REFUND's OrderID is its reference_id (payrouter's refund id, which
// reconciliation joins by). Transactions in currencies payrouter does not
// know are skipped. Errors are *providers.Error.
func (p *Provider) Settlements(ctx context.Context, from, to time.Time) ([]providers.Settlement, error) {
	q := url.Values{}
	q.Set("statuses", "SUCCESS")
	q.Set("created[gte]", from.UTC().Format(time.RFC3339))
	// created[lte] is inclusive and second-precise: ask to the second
	// before to, then drop anything at or after to.
	q.Set("created[lte]", to.UTC().Add(-time.Second).Truncate(time.Second).Format(time.RFC3339))
	q.Set("limit", strconv.Itoa(pageSize))
	var out []providers.Settlement
	for page := 0; ; page++ {
		if page > 100000 {
			return nil, providers.Errorf(providers.Ambiguous, "bad_response", "xendit transactions: too many pages")
		}
		var list transactionList
		if err := p.do(ctx, http.MethodGet, "/transactions?"+q.Encode(), "", nil, nil, &list); err != nil {
			return nil, err
		}
		for _, t := range list.Data {
			if t.Created.Before(from) || !t.Created.Before(to) {
				continue
			}
			s, ok := p.settlement(t)
			if ok {
				out = append(out, s)
			}
		}
		if !list.HasMore || len(list.Data) == 0 {
			return out, nil
		}
		q.Set("after_id", list.Data[len(list.Data)-1].ID)
	}
}

func (p *Provider) settlement(t transaction) (providers.Settlement, bool) {
	cur, err := payrouter.ParseCurrency(t.Currency)
	if err != nil {
		return providers.Settlement{}, false
	}
	amount, err1 := parseAmount(t.Amount, cur)
	fee, err2 := parseAmount(orZero(t.Fee.XenditFee), cur)
	vat, err3 := parseAmount(orZero(t.Fee.ValueAddedTax), cur)
	if err1 != nil || err2 != nil || err3 != nil {
		return providers.Settlement{}, false
	}
	fee += vat
	if t.Cashflow == "MONEY_OUT" {
		amount = -amount
	}
	s := providers.Settlement{Provider: p.cfg.Name, OrderID: t.ReferenceID, Type: txnType(t.Type), Amount: amount,
		Fee: fee, Net: amount - fee, Currency: cur, SettledAt: t.Created.UTC()}
	if t.SettlementStatus != nil {
		s.Status = *t.SettlementStatus
	}
	if t.EstimatedSettlementTime != nil {
		s.SettledAt = t.EstimatedSettlementTime.UTC()
	}
	switch s.Type {
	case "payment":
		s.ProviderPaymentID = t.ProductID
	case "refund":
		s.RefundID = t.ReferenceID
	}
	return s, true
}

func orZero(n json.Number) json.Number {
	if n == "" {
		return "0"
	}
	return n
}

func txnType(t string) string {
	switch t {
	case "PAYMENT":
		return "payment"
	case "REFUND":
		return "refund"
	case "PLATFORM_FEE":
		return "fee"
	}
	return strings.ToLower(t)
}
