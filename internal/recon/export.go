package recon

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/store"
)

// Sum is the DESIGN's total of one provider × currency: count = lines,
// gross = settled amounts (refunds and chargebacks negative), fee =
// settled fees, net = gross − fee; minor units of Currency.
type Sum struct {
	Provider, Currency string
	Count              int
	Gross, Fee, Net    int64
}

// Sums are the report's totals in the DESIGN's terms.
func (rep *Report) Sums() []Sum {
	out := make([]Sum, 0, len(rep.Totals))
	for _, t := range rep.Totals {
		g := t.Gross + t.Refunds
		out = append(out, Sum{Provider: t.Provider, Currency: string(t.Currency), Count: t.Lines, Gross: g, Fee: t.FeesSettled, Net: g - t.FeesSettled})
	}
	return out
}

// totalsHeader names every amount twice, so nobody confuses the units:
// *_minor are integers in the currency's minor units (IDR: rupiah, USD:
// cents), *_decimal the same amounts in major units, exactly.
var totalsHeader = []string{"provider", "currency", "count", "gross_minor", "fee_minor", "net_minor", "gross_decimal", "fee_decimal", "net_decimal"}

func (s Sum) row() []string {
	c := parseCur(s.Currency)
	return []string{s.Provider, s.Currency, strconv.Itoa(s.Count), itoa(s.Gross), itoa(s.Fee), itoa(s.Net), dec(s.Gross, c), dec(s.Fee, c), dec(s.Net, c)}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// WriteTotalsCSV writes one row per provider × currency (totalsHeader).
func (rep *Report) WriteTotalsCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(totalsHeader); err != nil {
		return err
	}
	for _, s := range rep.Sums() {
		if err := cw.Write(s.row()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// linesHeader is the XLSX's lines sheet: amounts as *_minor integers and
// *_decimal text (exact; no float anywhere).
var linesHeader = []string{"class", "provider", "type", "currency", "payment_id", "provider_payment_id", "order_id", "refund_id", "payout_batch",
	"settled_at", "settled_minor", "fee_settled_minor", "expected_minor", "fee_expected_minor", "amount_delta_minor", "fee_delta_minor",
	"settled_decimal", "fee_settled_decimal", "expected_decimal", "fee_expected_decimal", "source", "detail"}

// WriteXLSX writes the report as a spreadsheet (github.com/xuri/excelize):
// a Totals sheet (totalsHeader) and a Lines sheet (linesHeader). Minor
// units are integer cells; decimals are text cells, exact.
func (rep *Report) WriteXLSX(w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", "Totals"); err != nil {
		return err
	}
	if _, err := f.NewSheet("Lines"); err != nil {
		return err
	}
	row := func(sheet string, n int, vals []any) error {
		cell, err := excelize.CoordinatesToCellName(1, n)
		if err != nil {
			return err
		}
		return f.SetSheetRow(sheet, cell, &vals)
	}
	strs := func(ss []string) []any {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	if err := row("Totals", 1, strs(totalsHeader)); err != nil {
		return err
	}
	for i, s := range rep.Sums() {
		c := parseCur(s.Currency)
		if err := row("Totals", i+2, []any{s.Provider, s.Currency, s.Count, s.Gross, s.Fee, s.Net, dec(s.Gross, c), dec(s.Fee, c), dec(s.Net, c)}); err != nil {
			return err
		}
	}
	if err := row("Lines", 1, strs(linesHeader)); err != nil {
		return err
	}
	for i, l := range rep.Lines {
		at := ""
		if l.SettledAt != nil {
			at = l.SettledAt.UTC().Format(time.RFC3339)
		}
		c := l.Currency
		if err := row("Lines", i+2, []any{string(l.Class), cell(l.Provider), cell(l.Type), string(c), cell(l.PaymentID), cell(l.ProviderPaymentID),
			cell(l.OrderID), cell(l.RefundID), cell(l.Batch), at, l.SettledAmount, l.SettledFee, l.LedgerAmount, l.ExpectedFee, l.AmountDelta, l.FeeDelta,
			dec(l.SettledAmount, c), dec(l.SettledFee, c), dec(l.LedgerAmount, c), dec(l.ExpectedFee, c), cell(l.Source), cell(l.Detail)}); err != nil {
			return err
		}
	}
	_, err := f.WriteTo(w)
	return err
}

// ReportOf rebuilds the report of a stored run (for its CSV, JSON and
// XLSX exports).
func ReportOf(r *store.ReconRun, now time.Time) (*Report, error) {
	rep := &Report{GeneratedAt: now.UTC(), From: r.From, To: r.To, SettleAfter: r.SettleAfter.String(), Providers: []string{r.Provider}, Lines: []Line{}}
	var sum runSummary
	if len(r.Summary) > 0 {
		if err := json.Unmarshal(r.Summary, &sum); err != nil {
			return nil, fmt.Errorf("recon: run %s summary: %w", r.ID, err)
		}
	}
	rep.Tolerance = sum.Tolerance
	for _, sl := range r.Lines {
		var l Line
		if err := json.Unmarshal(sl.Data, &l); err != nil {
			return nil, fmt.Errorf("recon: line %s/%d: %w", r.ID, sl.N, err)
		}
		rep.Lines = append(rep.Lines, l)
	}
	rep.total()
	return rep, nil
}

// parseCur is the currency of a total ("" for lines without one, which
// dec renders as plain integers).
func parseCur(s string) payrouter.Currency {
	c, err := payrouter.ParseCurrency(s)
	if err != nil {
		return ""
	}
	return c
}
