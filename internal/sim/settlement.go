package sim

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// SettlementLine is one line a simulator would settle: a captured payment
// or a refund, in payrouter minor units (IDR exponent 0; the report
// formats convert to their provider's convention).
type SettlementLine struct {
	ProviderPaymentID string // the provider's payment (transaction) id
	OrderID           string // the merchant's order id (payrouter's attempt key)
	RefundID          string // refunds: the merchant's refund id (payrouter's refund id)
	Type              string // payment | refund
	Method            string // payrouter method name (fee table key)
	Currency          string
	Amount            int64 // positive; a refund is money out by its Type
	At                time.Time
}

// Settler is a Backend that keeps what it would settle; Mount then serves
// GET _settlement_report and POST _settlement_faults for it.
type Settler interface {
	// SettlementLines lists every captured payment and succeeded refund,
	// oldest first.
	SettlementLines() []SettlementLine
	// SettlementFormat names the dashboard export the report imitates:
	// midtrans, gopay, ovo or dana (see WriteSettlementReport).
	SettlementFormat() string
}

// SettlementFault changes what the next settlement report says about one
// payment (the control API's POST /sim/{p}/_settlement_faults).
type SettlementFault struct {
	Kind              string `json:"kind"` // drop | amount | fee | duplicate | orphan
	ProviderPaymentID string `json:"provider_payment_id"`
	Delta             int64  `json:"delta"` // minor units
	at                time.Time
}

// SettlementBook is the sandbox settlement side of one simulator: the
// faults injected, the fee table and the payout delay.
type SettlementBook struct {
	// Fees maps a method to its fee: basis points (half-up) + fixed minor
	// units, as payrouter's rules compute expected fees.
	Fees map[string]SettleFee
	// Delay is T+N: how long after capture a line settles (0: at once).
	Delay time.Duration
	// OrphanMethod is the method an orphan fault's charge is priced as.
	OrphanMethod string
	// BatchPrefix starts payout batch ids: "<prefix>-YYYYMMDD" (WIB).
	BatchPrefix string

	mu     sync.Mutex
	faults []SettlementFault
	seq    int
}

// SettleFee is one fee rule of a simulator's settlement.
type SettleFee struct {
	BP    int64
	Fixed int64 // minor units, any currency
}

func (f SettleFee) of(amount int64) int64 { return (amount*f.BP+5000)/10000 + f.Fixed }

// reportLine is a SettlementLine as reported: fee, settlement date and
// payout batch assigned, faults applied.
type reportLine struct {
	SettlementLine
	ID        string
	Fee       int64
	SettledOn time.Time // the payout date (T+N)
	Batch     string
}

// AddFault records f for the reports from now on. kinds other than orphan
// need a provider payment id that some line has (else ErrNotFound).
func (b *SettlementBook) AddFault(f SettlementFault, lines []SettlementLine, now time.Time) error {
	switch f.Kind {
	case "drop", "amount", "fee", "duplicate":
		found := false
		for _, l := range lines {
			if l.Type == "payment" && l.ProviderPaymentID == f.ProviderPaymentID {
				found = true
			}
		}
		if !found {
			return ErrNotFound
		}
	case "orphan":
	default:
		return fmt.Errorf("kind must be drop, amount, fee, duplicate or orphan, not %q", f.Kind)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if f.Kind == "orphan" && f.ProviderPaymentID == "" {
		b.seq++
		f.ProviderPaymentID = fmt.Sprintf("orphan-%d-%d", now.UnixNano(), b.seq)
	}
	f.at = now
	b.faults = append(b.faults, f)
	return nil
}

// Report lists the lines created in [from, to) with fees, payout dates,
// batches and the faults applied.
func (b *SettlementBook) Report(lines []SettlementLine, from, to time.Time) []reportLine {
	b.mu.Lock()
	faults := append([]SettlementFault(nil), b.faults...)
	b.mu.Unlock()
	for _, f := range faults {
		if f.Kind == "orphan" {
			amt := f.Delta
			if amt <= 0 {
				amt = 10000
			}
			lines = append(lines, SettlementLine{ProviderPaymentID: f.ProviderPaymentID, OrderID: "unknown-" + f.ProviderPaymentID,
				Type: "payment", Method: b.OrphanMethod, Currency: "IDR", Amount: amt, At: f.at})
		}
	}
	var out []reportLine
	for i, l := range lines {
		if l.At.Before(from) || !l.At.Before(to) {
			continue
		}
		r := reportLine{SettlementLine: l, ID: fmt.Sprintf("STL%08d", i+1)}
		if l.Type == "payment" {
			r.Fee = b.Fees[l.Method].of(l.Amount)
		}
		r.SettledOn = l.At.Add(b.Delay)
		r.Batch = b.BatchPrefix + "-" + r.SettledOn.In(wib).Format("20060102")
		dropped, dup := false, 0
		if l.Type == "payment" {
			for _, f := range faults {
				if f.ProviderPaymentID != l.ProviderPaymentID || f.Kind == "orphan" {
					continue
				}
				switch f.Kind {
				case "drop":
					dropped = true
				case "amount":
					r.Amount += f.Delta
				case "fee":
					r.Fee += f.Delta
				case "duplicate":
					dup++
				}
			}
		}
		if dropped {
			continue
		}
		out = append(out, r)
		for k := 0; k < dup; k++ {
			d := r
			d.ID = fmt.Sprintf("%s-D%d", r.ID, k+1)
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// wib is Western Indonesian Time, the zone the Indonesian dashboards export in.
var wib = time.FixedZone("WIB", 7*3600)

// WriteSettlementReport writes lines in format (the dashboard exports
// documented in the README, "Reconciliation" → settlement file formats):
//
//	midtrans  comma-separated, rupiah with two decimals ("150000.00")
//	gopay     comma-separated, whole rupiah
//	ovo       comma-separated, whole rupiah, SALE/REFUND
//	dana      semicolon-separated, amounts in cents (rupiah × 100)
//
// Times are WIB (+07:00). Refund amounts are positive with the type saying
// money out, as the dashboards show them.
func WriteSettlementReport(w io.Writer, format string, lines []reportLine) error {
	cw := csv.NewWriter(w)
	ts := func(t time.Time) string { return t.In(wib).Format("2006-01-02 15:04:05") }
	day := func(t time.Time) string { return t.In(wib).Format("2006-01-02") }
	var header []string
	var row func(l reportLine) []string
	net := func(l reportLine) int64 {
		if l.Type == "refund" {
			return -l.Amount
		}
		return l.Amount - l.Fee
	}
	switch format {
	case "midtrans":
		header = []string{"Transaction ID", "Order ID", "Refund Key", "Transaction Type", "Payment Type", "Transaction Time",
			"Settlement Date", "Currency", "Gross Amount", "MDR Fee", "Net Amount", "Payout ID"}
		rp := func(n int64) string { return strconv.FormatInt(n, 10) + ".00" }
		row = func(l reportLine) []string {
			typ := "settlement"
			if l.Type == "refund" {
				typ = "refund"
			}
			return []string{l.ProviderPaymentID, l.OrderID, l.RefundID, typ, midtransPaymentType(l.Method), ts(l.At), day(l.SettledOn),
				l.Currency, rp(l.Amount), rp(l.Fee), rp(net(l)), l.Batch}
		}
	case "gopay":
		header = []string{"transaction_id", "merchant_order_id", "refund_id", "transaction_type", "payment_method", "transaction_time",
			"settlement_date", "currency", "gross_amount", "mdr_fee", "net_amount", "payout_batch_id"}
		row = func(l reportLine) []string {
			typ := "PAYMENT"
			if l.Type == "refund" {
				typ = "REFUND"
			}
			return []string{l.ProviderPaymentID, l.OrderID, l.RefundID, typ, "GOPAY", ts(l.At), day(l.SettledOn), l.Currency,
				itoa(l.Amount), itoa(l.Fee), itoa(net(l)), l.Batch}
		}
	case "ovo":
		header = []string{"Reference Number", "Merchant Invoice", "Refund Reference", "Transaction Type", "Transaction Date",
			"Settlement Date", "Currency", "Amount", "MDR", "Net Amount", "Batch No"}
		row = func(l reportLine) []string {
			typ := "SALE"
			if l.Type == "refund" {
				typ = "REFUND"
			}
			return []string{l.ProviderPaymentID, l.OrderID, l.RefundID, typ, ts(l.At), day(l.SettledOn), l.Currency,
				itoa(l.Amount), itoa(l.Fee), itoa(net(l)), l.Batch}
		}
	case "dana":
		cw.Comma = ';'
		header = []string{"acquirementId", "merchantTransId", "refundId", "transactionType", "createdTime", "settlementDate",
			"currency", "grossAmountCents", "feeAmountCents", "netAmountCents", "settlementBatchId"}
		row = func(l reportLine) []string {
			typ := "PAYMENT"
			if l.Type == "refund" {
				typ = "REFUND"
			}
			return []string{l.ProviderPaymentID, l.OrderID, l.RefundID, typ, l.At.In(wib).Format(time.RFC3339), day(l.SettledOn),
				l.Currency, itoa(l.Amount * 100), itoa(l.Fee * 100), itoa(net(l) * 100), l.Batch}
		}
	default:
		return fmt.Errorf("unknown settlement format %q", format)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, l := range lines {
		if err := cw.Write(row(l)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func midtransPaymentType(method string) string {
	switch method {
	case "card":
		return "credit_card"
	case "":
		return "other"
	}
	return method
}

// mountSettlement serves the settlement report and faults of a Settler.
func (s *Sim) mountSettlement(mux *http.ServeMux, prefix string, st Settler) {
	mux.HandleFunc("GET "+prefix+"/_settlement_report", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		from, to := time.Time{}, time.Now().Add(24*time.Hour)
		var err error
		if v := q.Get("from"); v != "" {
			if from, err = time.Parse(time.RFC3339, v); err != nil {
				writeJSON(w, 400, map[string]string{"error": "from must be an RFC 3339 time"})
				return
			}
		}
		if v := q.Get("to"); v != "" {
			if to, err = time.Parse(time.RFC3339, v); err != nil {
				writeJSON(w, 400, map[string]string{"error": "to must be an RFC 3339 time"})
				return
			}
		}
		lines := s.Settlement.Report(st.SettlementLines(), from, to)
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-settlement.csv"`, s.Name))
		if err := WriteSettlementReport(w, st.SettlementFormat(), lines); err != nil {
			writeJSON(w, 500, map[string]string{"error": err.Error()})
		}
	})
	mux.HandleFunc("POST "+prefix+"/_settlement_faults", func(w http.ResponseWriter, r *http.Request) {
		ServeSettlementFault(w, r, func(f SettlementFault) error { return s.Settlement.AddFault(f, st.SettlementLines(), time.Now()) })
	})
}

// ServeSettlementFault is the control API's POST _settlement_faults for
// every simulator: it decodes the fault strictly, hands it to apply and
// answers 404 (ErrNotFound: no such settled payment), 400 or 200 with it.
func ServeSettlementFault(w http.ResponseWriter, r *http.Request, apply func(SettlementFault) error) {
	var f SettlementFault
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, 400, map[string]string{"error": err.Error()})
		return
	}
	err := apply(f)
	switch {
	case errors.Is(err, ErrNotFound):
		writeJSON(w, 404, map[string]string{"error": "no settled payment " + f.ProviderPaymentID})
	case err != nil:
		writeJSON(w, 400, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, 200, f)
	}
}

// SettleFeesFor is the sandbox fee table of a simulator by its report
// format: the shipped config.yaml's fees for that provider, so that a
// clean sandbox run reconciles with no fee mismatch.
func SettleFeesFor(format string) map[string]SettleFee {
	switch format {
	case "midtrans":
		return map[string]SettleFee{"card": {BP: 290, Fixed: 2000}, "gopay": {BP: 200}, "qris": {BP: 70}, "bank_transfer": {Fixed: 4000},
			"shopeepay": {BP: 200}}
	case "gopay":
		return map[string]SettleFee{"gopay": {BP: 180}}
	case "ovo":
		return map[string]SettleFee{"ovo": {BP: 250}}
	case "dana":
		return map[string]SettleFee{"dana": {BP: 140}}
	}
	return nil
}
