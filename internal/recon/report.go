package recon

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/payrouter/payrouter"
)

// dec renders minor units of cur in major units, exactly; an empty
// currency (anomaly lines) renders the integer.
func dec(n int64, cur payrouter.Currency) string {
	if !cur.Valid() {
		return strconv.FormatInt(n, 10)
	}
	return payrouter.FormatDecimal(n, cur.Exponent())
}

// WriteSummary writes the human table: one row per provider × currency
// with line counts and totals in major units.
func (rep *Report) WriteSummary(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "PROVIDER\tCUR\tLINES\tMATCHED\tISSUES\tGROSS\tREFUNDS\tFEE EXPECTED\tFEE SETTLED\tFEE DELTA\tNET\tAMOUNT DELTA\tMISSING\t\n")
	for _, t := range rep.Totals {
		cur := string(t.Currency)
		if cur == "" {
			cur = "-"
		}
		c := t.Currency
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Provider, cur, t.Lines, t.Classes[Matched], t.Discrepancies,
			dec(t.Gross, c), dec(t.Refunds, c), dec(t.FeesExpected, c), dec(t.FeesSettled, c), dec(t.FeeDelta, c),
			dec(t.Net, c), dec(t.AmountDelta, c), dec(t.Missing, c))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	counts := map[Class]int{}
	for _, l := range rep.Lines {
		counts[l.Class]++
	}
	var parts []string
	for _, c := range []Class{Matched, AmountMismatch, FeeMismatch, RefundMismatch, MissingInLedger, MissingInSettlement, DuplicateSettlement, Other} {
		if counts[c] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, counts[c]))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no lines"}
	}
	_, err := fmt.Fprintf(w, "\n%s to %s, tolerance %d minor units: %s; %d discrepancies\n",
		rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339), rep.Tolerance, strings.Join(parts, ", "), rep.Discrepancies)
	return err
}

var csvHeader = []string{"class", "discrepancy", "provider", "type", "currency", "payment_id", "provider_payment_id", "order_id",
	"settled_at", "settlement_status", "settled_gross", "settled_fee", "settled_net", "ledger_amount", "expected_fee",
	"amount_delta", "fee_delta", "source", "detail"}

// WriteCSV writes one row per line. Amounts are exact decimals in the
// currency's major unit, like the settlement CSV input. Text cells that a
// spreadsheet would run as a formula are prefixed with a quote.
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, l := range rep.Lines {
		at := ""
		if l.SettledAt != nil {
			at = l.SettledAt.UTC().Format(time.RFC3339)
		}
		c := l.Currency
		rec := []string{string(l.Class), strconv.FormatBool(l.Class.Discrepancy()), cell(l.Provider), cell(l.Type), string(c),
			cell(l.PaymentID), cell(l.ProviderPaymentID), cell(l.OrderID), at, cell(l.Status),
			dec(l.SettledAmount, c), dec(l.SettledFee, c), dec(l.SettledNet, c), dec(l.LedgerAmount, c), dec(l.ExpectedFee, c),
			dec(l.AmountDelta, c), dec(l.FeeDelta, c), cell(l.Source), cell(l.Detail)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cell defuses spreadsheet formula injection from provider-supplied text.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteJSON writes the report (summary and lines) as indented JSON;
// amounts are integers in minor units.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteFiles writes dir/report.csv (lines), dir/totals.csv, dir/report.json
// and dir/report.xlsx, creating dir.
// Each file is written to a temporary name and renamed, so a reader never
// sees half a report.
func (rep *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer) error{"report.csv": rep.WriteCSV, "report.json": rep.WriteJSON,
		"totals.csv": rep.WriteTotalsCSV, "report.xlsx": rep.WriteXLSX} {
		if err := writeFile(filepath.Join(dir, name), write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}
