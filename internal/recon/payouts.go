package recon

import (
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/payrouter/payrouter"
)

// Leg 2 of reconciliation: the payouts each provider made (its settlement
// lines grouped by payout batch) against the credits on the bank account
// (a CAMT.053 statement or a CSV export), so finance sees which
// settlement reached the bank and which did not.

// Payout is one provider payout: the net of its settlement lines in one
// batch and currency.
type Payout struct {
	Provider string             `json:"provider"`
	Batch    string             `json:"batch"`
	Currency payrouter.Currency `json:"currency"`
	PayoutOn string             `json:"payout_on,omitempty"` // YYYY-MM-DD, when the source says
	Lines    int                `json:"lines"`
	Net      int64              `json:"net"` // minor units: what should reach the bank
}

// Payouts groups entries by provider, payout batch and currency. An entry
// without a batch (Stripe and Xendit list none) is grouped by its
// settlement day: batch "<provider>-YYYYMMDD".
func Payouts(entries []Entry) []Payout {
	type key struct {
		p, b string
		c    payrouter.Currency
	}
	idx := map[key]int{}
	var out []Payout
	for _, e := range entries {
		b, on := e.Batch, e.PayoutOn
		if b == "" {
			on = e.SettledAt.UTC().Format(time.DateOnly)
			b = e.Provider + "-" + e.SettledAt.UTC().Format("20060102")
		}
		k := key{e.Provider, b, e.Currency}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, Payout{Provider: e.Provider, Batch: b, Currency: e.Currency, PayoutOn: on})
		}
		out[i].Lines++
		out[i].Net += e.Net
		if out[i].PayoutOn == "" {
			out[i].PayoutOn = on
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Batch < out[j].Batch
	})
	return out
}

// BankLine is one booked entry of a bank statement.
type BankLine struct {
	BookedOn string             `json:"booked_on"` // YYYY-MM-DD
	Amount   int64              `json:"amount"`    // minor units; credits positive, debits negative
	Currency payrouter.Currency `json:"currency"`
	Ref      string             `json:"reference"` // every reference and remittance text, joined by " | "
	Source   string             `json:"source"`
}

// camt053 is the part of a CAMT.053 (BkToCstmrStmt, any version
// camt.053.001.02 to .13: the elements read are the same) that payouts
// are matched by. Amounts are read as text and parsed exactly: the Go
// ISO 20022 library on the module proxy (github.com/moov-io/iso20022
// v0.2.1) decodes amounts into float64, which payrouter never puts money in.
type camt053 struct {
	Stmts []struct {
		ID      string `xml:"Id"`
		Entries []struct {
			Amt struct {
				Value string `xml:",chardata"`
				Ccy   string `xml:"Ccy,attr"`
			} `xml:"Amt"`
			CdtDbtInd string `xml:"CdtDbtInd"`
			Sts       struct {
				Cd   string `xml:"Cd"`
				Text string `xml:",chardata"` // camt.053.001.02: <Sts>BOOK</Sts>
			} `xml:"Sts"`
			BookedDate  string `xml:"BookgDt>Dt"`
			BookedTime  string `xml:"BookgDt>DtTm"`
			NtryRef     string `xml:"NtryRef"`
			AcctSvcrRef string `xml:"AcctSvcrRef"`
			AddtlInf    string `xml:"AddtlNtryInf"`
			Txs         []struct {
				EndToEndID  string   `xml:"Refs>EndToEndId"`
				AcctSvcrRef string   `xml:"Refs>AcctSvcrRef"`
				Ustrd       []string `xml:"RmtInf>Ustrd"`
				AddtlInf    string   `xml:"AddtlTxInf"`
			} `xml:"NtryDtls>TxDtls"`
		} `xml:"Ntry"`
	} `xml:"BkToCstmrStmt>Stmt"`
}

// ParseCAMT053 reads the booked entries of a CAMT.053 statement. Pending
// entries are skipped; every booked entry becomes a line. Errors name the
// file and the entry.
func ParseCAMT053(r io.Reader, name string) ([]BankLine, error) {
	var doc camt053
	if err := xml.NewDecoder(io.LimitReader(r, 256<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: not a CAMT.053 document: %w", name, err)
	}
	var out []BankLine
	for si, st := range doc.Stmts {
		for ei, e := range st.Entries {
			where := fmt.Sprintf("%s: Stmt %d (%s) Ntry %d", name, si+1, st.ID, ei+1)
			status := strings.TrimSpace(e.Sts.Cd)
			if status == "" {
				status = strings.TrimSpace(e.Sts.Text)
			}
			if status != "" && status != "BOOK" {
				continue
			}
			cur, err := payrouter.ParseCurrency(e.Amt.Ccy)
			if err != nil {
				return nil, fmt.Errorf("%s: Amt Ccy: %v", where, err)
			}
			amt, err := ParseAmount(strings.TrimSpace(e.Amt.Value), cur, false)
			if err != nil || amt < 0 {
				return nil, fmt.Errorf("%s: Amt: %q is not an amount in %s", where, e.Amt.Value, cur)
			}
			switch e.CdtDbtInd {
			case "CRDT":
			case "DBIT":
				amt = -amt
			default:
				return nil, fmt.Errorf("%s: CdtDbtInd %q is not CRDT or DBIT", where, e.CdtDbtInd)
			}
			day := e.BookedDate
			if day == "" && len(e.BookedTime) >= 10 {
				day = e.BookedTime[:10]
			}
			if _, err := time.Parse(time.DateOnly, day); err != nil {
				return nil, fmt.Errorf("%s: BookgDt: %q is not a date", where, day)
			}
			refs := []string{e.NtryRef, e.AcctSvcrRef, e.AddtlInf}
			for _, tx := range e.Txs {
				refs = append(refs, tx.EndToEndID, tx.AcctSvcrRef, tx.AddtlInf)
				refs = append(refs, tx.Ustrd...)
			}
			out = append(out, BankLine{BookedOn: day, Amount: amt, Currency: cur, Ref: joinRefs(refs), Source: where})
		}
	}
	return out, nil
}

func joinRefs(refs []string) string {
	var keep []string
	for _, r := range refs {
		if r = strings.TrimSpace(r); r != "" {
			keep = append(keep, r)
		}
	}
	return strings.Join(keep, " | ")
}

// ParseBankCSV reads a bank statement CSV: header row with booking_date
// (YYYY-MM-DD), amount (signed major-unit decimal, credits positive),
// currency and reference (any text; the payout batch id is looked for in
// it); other columns are ignored.
func ParseBankCSV(r io.Reader, name string) ([]BankLine, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: want a header row: %v", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, need := range []string{"booking_date", "amount", "currency", "reference"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s:1: missing column %q", name, need)
		}
	}
	var out []BankLine
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, csvErr(name, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(c string) string { return strings.TrimSpace(rec[col[c]]) }
		cur, err := payrouter.ParseCurrency(get("currency"))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: currency: %v", name, line, err)
		}
		amt, err := ParseAmount(get("amount"), cur, false)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: amount: %v", name, line, err)
		}
		if _, err := time.Parse(time.DateOnly, get("booking_date")); err != nil {
			return nil, fmt.Errorf("%s:%d: booking_date: %q is not YYYY-MM-DD", name, line, get("booking_date"))
		}
		out = append(out, BankLine{BookedOn: get("booking_date"), Amount: amt, Currency: cur, Ref: get("reference"), Source: fmt.Sprintf("%s:%d", name, line)})
	}
}

// Payout classes.
const (
	PayoutInBank         = "in_bank"         // a credit of the same amount names the batch, or matches it by amount and date
	PayoutAmountMismatch = "amount_mismatch" // a credit names the batch with another amount
	PayoutNotInBank      = "not_in_bank"     // no credit found: the money has not arrived
)

// PayoutMatch is one payout with what the bank says about it.
type PayoutMatch struct {
	Payout
	Class    string `json:"class"`
	MatchBy  string `json:"match_by,omitempty"` // reference | amount
	Bank     int64  `json:"bank_amount"`
	BookedOn string `json:"booked_on,omitempty"`
	Source   string `json:"bank_source,omitempty"`
}

// PayoutReport is leg 2's outcome: every payout and the bank credits no
// payout explains.
type PayoutReport struct {
	Payouts []PayoutMatch `json:"payouts"`
	Unknown []BankLine    `json:"unknown_credits"`
}

// Discrepancies counts payouts not (or wrongly) in the bank and unknown credits.
func (pr *PayoutReport) Discrepancies() int {
	n := len(pr.Unknown)
	for _, p := range pr.Payouts {
		if p.Class != PayoutInBank {
			n++
		}
	}
	return n
}

// MatchPayouts matches payouts to bank credits: first a credit whose
// reference contains the batch id (same currency: in_bank when the amount
// agrees, else amount_mismatch), then, for the rest, the earliest unused
// credit of exactly the net in the currency booked from the payout date to
// window days after it. Each credit explains at most one payout.
func MatchPayouts(ps []Payout, bank []BankLine, window int) *PayoutReport {
	used := make([]bool, len(bank))
	rep := &PayoutReport{Payouts: []PayoutMatch{}, Unknown: []BankLine{}}
	pending := []int{}
	for _, p := range ps {
		m := PayoutMatch{Payout: p, Class: PayoutNotInBank}
		for i, b := range bank {
			if used[i] || b.Amount <= 0 || b.Currency != p.Currency || !strings.Contains(b.Ref, p.Batch) {
				continue
			}
			used[i] = true
			m.MatchBy, m.Bank, m.BookedOn, m.Source = "reference", b.Amount, b.BookedOn, b.Source
			m.Class = PayoutInBank
			if b.Amount != p.Net {
				m.Class = PayoutAmountMismatch
			}
			break
		}
		if m.Class == PayoutNotInBank {
			pending = append(pending, len(rep.Payouts))
		}
		rep.Payouts = append(rep.Payouts, m)
	}
	for _, pi := range pending {
		m := &rep.Payouts[pi]
		on, err := time.Parse(time.DateOnly, m.PayoutOn)
		if err != nil || m.Net <= 0 {
			continue
		}
		best := -1
		for i, b := range bank {
			d, err := time.Parse(time.DateOnly, b.BookedOn)
			if used[i] || err != nil || b.Currency != m.Currency || b.Amount != m.Net || d.Before(on) || d.After(on.AddDate(0, 0, window)) {
				continue
			}
			if best < 0 || b.BookedOn < bank[best].BookedOn {
				best = i
			}
		}
		if best >= 0 {
			used[best] = true
			b := bank[best]
			m.Class, m.MatchBy, m.Bank, m.BookedOn, m.Source = PayoutInBank, "amount", b.Amount, b.BookedOn, b.Source
		}
	}
	for i, b := range bank {
		if !used[i] && b.Amount > 0 {
			rep.Unknown = append(rep.Unknown, b)
		}
	}
	return rep
}

// WriteSummary writes the payouts table and the unknown credits.
func (pr *PayoutReport) WriteSummary(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PROVIDER\tBATCH\tCUR\tPAYOUT ON\tLINES\tNET\tBANK\tBOOKED\tCLASS\tBY\n")
	for _, p := range pr.Payouts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Provider, p.Batch, p.Currency, p.PayoutOn, p.Lines,
			dec(p.Net, p.Currency), dec(p.Bank, p.Currency), p.BookedOn, p.Class, p.MatchBy)
	}
	for _, b := range pr.Unknown {
		fmt.Fprintf(tw, "-\t-\t%s\t-\t-\t-\t%s\t%s\tunknown_credit\t%s\n", b.Currency, dec(b.Amount, b.Currency), b.BookedOn, b.Ref)
	}
	return tw.Flush()
}

// WriteCSV writes one row per payout and unknown credit; amounts both as
// *_minor integers and *_decimal.
func (pr *PayoutReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"class", "provider", "batch", "currency", "payout_on", "lines", "net_minor", "bank_minor", "net_decimal", "bank_decimal",
		"booked_on", "match_by", "bank_source"})
	for _, p := range pr.Payouts {
		_ = cw.Write([]string{p.Class, p.Provider, cell(p.Batch), string(p.Currency), p.PayoutOn, fmt.Sprint(p.Lines), itoa(p.Net), itoa(p.Bank),
			dec(p.Net, p.Currency), dec(p.Bank, p.Currency), p.BookedOn, p.MatchBy, cell(p.Source)})
	}
	for _, b := range pr.Unknown {
		_ = cw.Write([]string{"unknown_credit", "", "", string(b.Currency), "", "0", "0", itoa(b.Amount), dec(0, b.Currency), dec(b.Amount, b.Currency),
			b.BookedOn, "", cell(b.Source + " " + b.Ref)})
	}
	cw.Flush()
	return cw.Error()
}
