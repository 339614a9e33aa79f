package recon

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// Format is one provider dashboard's settlement export: which column holds
// what, the separator and the amount unit. The README's "Settlement file
// formats" documents each mapping.
type Format struct {
	Name  string
	Comma rune
	// Cents: amounts are hundredths of the currency's major unit (DANA);
	// otherwise they are major-unit decimals.
	Cents bool
	// Columns maps our field to the export's header: ppid, order, refund,
	// type, at, payout_on, currency, gross, fee, net, batch.
	Columns map[string]string
	// Payment, Refund and Chargeback are the type column's values.
	Payment, Refund, Chargeback string
	// TimeLayout of the "at" column (in WIB when it carries no zone).
	TimeLayout string
}

var wib = time.FixedZone("WIB", 7*3600)

// Formats are the dashboard exports payrouter reads, by provider kind.
func Formats() map[string]Format {
	const local = "2006-01-02 15:04:05"
	return map[string]Format{
		"midtrans": {Name: "midtrans", Comma: ',', Payment: "settlement", Refund: "refund", Chargeback: "chargeback", TimeLayout: local,
			Columns: map[string]string{"ppid": "Transaction ID", "order": "Order ID", "refund": "Refund Key", "type": "Transaction Type",
				"at": "Transaction Time", "payout_on": "Settlement Date", "currency": "Currency", "gross": "Gross Amount",
				"fee": "MDR Fee", "net": "Net Amount", "batch": "Payout ID"}},
		"gopay": {Name: "gopay", Comma: ',', Payment: "PAYMENT", Refund: "REFUND", Chargeback: "CHARGEBACK", TimeLayout: local,
			Columns: map[string]string{"ppid": "transaction_id", "order": "merchant_order_id", "refund": "refund_id", "type": "transaction_type",
				"at": "transaction_time", "payout_on": "settlement_date", "currency": "currency", "gross": "gross_amount",
				"fee": "mdr_fee", "net": "net_amount", "batch": "payout_batch_id"}},
		"ovo": {Name: "ovo", Comma: ',', Payment: "SALE", Refund: "REFUND", Chargeback: "CHARGEBACK", TimeLayout: local,
			Columns: map[string]string{"ppid": "Reference Number", "order": "Merchant Invoice", "refund": "Refund Reference", "type": "Transaction Type",
				"at": "Transaction Date", "payout_on": "Settlement Date", "currency": "Currency", "gross": "Amount",
				"fee": "MDR", "net": "Net Amount", "batch": "Batch No"}},
		"dana": {Name: "dana", Comma: ';', Cents: true, Payment: "PAYMENT", Refund: "REFUND", Chargeback: "CHARGEBACK", TimeLayout: time.RFC3339,
			Columns: map[string]string{"ppid": "acquirementId", "order": "merchantTransId", "refund": "refundId", "type": "transactionType",
				"at": "createdTime", "payout_on": "settlementDate", "currency": "currency", "gross": "grossAmountCents",
				"fee": "feeAmountCents", "net": "netAmountCents", "batch": "settlementBatchId"}},
	}
}

// Parse reads one export for provider. Refund and chargeback rows are
// positive in the file (the type says money out) and become negative
// amounts; every row must satisfy net = gross − fee (payments) or
// net = −gross (money out). Errors name "name:line: column: problem"; no
// row is skipped silently.
func (f Format) Parse(r io.Reader, name, provider string) ([]Entry, error) {
	cr := csv.NewReader(r)
	cr.Comma = f.Comma
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file, want the %s header row", name, f.Name)
	}
	if err != nil {
		return nil, csvErr(name, err)
	}
	idx := map[string]int{}
	for i, h := range header {
		idx[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	col := map[string]int{}
	for k, h := range f.Columns {
		i, ok := idx[h]
		if !ok {
			return nil, fmt.Errorf("%s:1: missing column %q of the %s settlement export", name, h, f.Name)
		}
		col[k] = i
	}
	var out []Entry
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, csvErr(name, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(k string) string { return strings.TrimSpace(rec[col[k]]) }
		e, err := f.row(get, provider)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		e.Source = fmt.Sprintf("%s:%d", name, line)
		out = append(out, e)
	}
}

func (f Format) row(get func(string) string, provider string) (Entry, error) {
	e := Entry{Settlement: providers.Settlement{Provider: provider, ProviderPaymentID: get("ppid"), OrderID: get("order"),
		RefundID: get("refund"), Status: "settled", Batch: get("batch")}, Batch: get("batch")}
	out := true
	switch t := get("type"); t {
	case f.Payment:
		e.Type, out = "payment", false
	case f.Refund:
		e.Type = "refund"
	case f.Chargeback:
		e.Type = "chargeback"
	default:
		return e, fmt.Errorf("%s: %q is not %s, %s or %s", f.Columns["type"], t, f.Payment, f.Refund, f.Chargeback)
	}
	if e.ProviderPaymentID == "" && e.OrderID == "" {
		return e, fmt.Errorf("%s or %s is required", f.Columns["ppid"], f.Columns["order"])
	}
	cur, err := payrouter.ParseCurrency(get("currency"))
	if err != nil {
		return e, fmt.Errorf("%s: %v", f.Columns["currency"], err)
	}
	e.Currency = cur
	amount := func(k string) (int64, error) {
		n, err := f.amount(get(k), cur)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", f.Columns[k], err)
		}
		return n, nil
	}
	if e.Amount, err = amount("gross"); err != nil {
		return e, err
	}
	if e.Fee, err = amount("fee"); err != nil {
		return e, err
	}
	net, err := amount("net")
	if err != nil {
		return e, err
	}
	if e.Amount < 0 || e.Fee < 0 {
		return e, fmt.Errorf("%s and %s must not be negative (the type says money out)", f.Columns["gross"], f.Columns["fee"])
	}
	if out {
		e.Amount = -e.Amount
	}
	e.Net = e.Amount - e.Fee
	if net != e.Net {
		return e, fmt.Errorf("%s: %s is not gross − fee (%s)", f.Columns["net"], get("net"), dec(e.Net, cur))
	}
	if e.SettledAt, err = f.parseTime(get("at")); err != nil {
		return e, fmt.Errorf("%s: %v", f.Columns["at"], err)
	}
	if s := get("payout_on"); s != "" {
		d, err := time.ParseInLocation(time.DateOnly, s, wib)
		if err != nil {
			return e, fmt.Errorf("%s: %q is not YYYY-MM-DD", f.Columns["payout_on"], s)
		}
		e.PayoutOn = d.Format(time.DateOnly)
	}
	return e, nil
}

func (f Format) parseTime(s string) (time.Time, error) {
	t, err := time.ParseInLocation(f.TimeLayout, s, wib)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not %s", s, f.TimeLayout)
	}
	return t.UTC(), nil
}

// amount parses one unsigned amount into minor units of cur, exactly.
func (f Format) amount(s string, cur payrouter.Currency) (int64, error) {
	if !f.Cents {
		return ParseAmount(s, cur, false)
	}
	c, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%q is not an integer number of cents", s)
	}
	// cents are 1/100 of the major unit; minor units are 1/10^exp.
	switch exp := cur.Exponent(); {
	case exp == 2:
		return c, nil
	case exp < 2:
		div := int64(1)
		for i := exp; i < 2; i++ {
			div *= 10
		}
		if c%div != 0 {
			return 0, fmt.Errorf("%q cents is not a whole number of %s minor units", s, cur)
		}
		return c / div, nil
	default:
		return 0, fmt.Errorf("%s has %d decimals, more than cents can carry", cur, exp)
	}
}

// ReportClient lists a provider's settlements from a settlement report
// served over HTTP in its dashboard's export format: in sandbox the
// simulator's GET /sim/{p}/_settlement_report?from=…&to=…. It implements
// providers.SettlementLister.
type ReportClient struct {
	Provider string
	Format   Format
	URL      string // the report's URL without query
	HTTP     *http.Client
}

var _ providers.SettlementLister = (*ReportClient)(nil)

// ErrReport is a settlement report that could not be fetched or read.
var ErrReport = errors.New("settlement report")

// Settlements fetches and parses the report of [from, to).
func (c *ReportClient) Settlements(ctx context.Context, from, to time.Time) ([]providers.Settlement, error) {
	es, err := c.Entries(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]providers.Settlement, len(es))
	for i, e := range es {
		out[i] = e.Settlement
	}
	return out, nil
}

// Entries is Settlements keeping each line's source and payout batch.
func (c *ReportClient) Entries(ctx context.Context, from, to time.Time) ([]Entry, error) {
	q := url.Values{"from": {from.UTC().Format(time.RFC3339)}, "to": {to.UTC().Format(time.RFC3339)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrReport, c.Provider, err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrReport, c.Provider, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: GET %s: HTTP %d", ErrReport, c.Provider, c.URL, resp.StatusCode)
	}
	es, err := c.Format.Parse(io.LimitReader(resp.Body, 256<<20), c.Provider+" settlement report", c.Provider)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReport, err)
	}
	for i := range es {
		es[i].Source = "report:" + strings.TrimPrefix(es[i].Source, c.Provider+" settlement report:")
	}
	return es, nil
}
