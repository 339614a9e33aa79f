package recon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payrouter/payrouter/providers"
)

// camtEntry is one <Ntry> of the test's CAMT.053.001.08 fixture.
type camtEntry struct {
	amount, ccy, cdtDbt, status, date, ustrd string
}

// buildCAMT053 builds a camt.053.001.08 statement with the given entries,
// as a bank would send it (namespaced, group header, one statement).
func buildCAMT053(entries []camtEntry) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>STMT-20261102</MsgId><CreDtTm>2026-11-03T01:00:00+07:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>ACC-1-20261102</Id>
   <Acct><Id><Othr><Id>1234567890</Id></Othr></Id><Ccy>IDR</Ccy></Acct>
   <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="IDR">0</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-02</Dt></Dt></Bal>
`)
	for i, e := range entries {
		fmt.Fprintf(&b, `   <Ntry>
    <NtryRef>%d</NtryRef>
    <Amt Ccy="%s">%s</Amt>
    <CdtDbtInd>%s</CdtDbtInd>
    <Sts><Cd>%s</Cd></Sts>
    <BookgDt><Dt>%s</Dt></BookgDt>
    <ValDt><Dt>%s</Dt></ValDt>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls><TxDtls><Refs><EndToEndId>E2E-%d</EndToEndId></Refs><RmtInf><Ustrd>%s</Ustrd></RmtInf></TxDtls></NtryDtls>
   </Ntry>
`, i+1, e.ccy, e.amount, e.cdtDbt, e.status, e.date, e.date, i+1, e.ustrd)
	}
	b.WriteString("  </Stmt>\n </BkToCstmrStmt>\n</Document>\n")
	return b.String()
}

func payoutEntry(provider, batch, on string, net int64) Entry {
	at, _ := time.Parse(time.DateOnly, on)
	return Entry{Settlement: providers.Settlement{Provider: provider, Type: "payment", Amount: net + 100, Fee: 100, Net: net, Currency: "IDR",
		SettledAt: at}, Batch: batch, PayoutOn: on}
}

// Four payouts against a CAMT.053 the test builds: one named in the
// remittance text, one found by amount and date, one named with the wrong
// amount, one that never arrived; a credit nobody explains, a debit and a
// pending entry that are not payouts.
func TestPayoutsAgainstCAMT053(t *testing.T) {
	entries := []Entry{
		payoutEntry("midtrans", "MIDTRANS-20261102", "2026-11-02", 148950), payoutEntry("midtrans", "MIDTRANS-20261102", "2026-11-02", 50000),
		payoutEntry("dana", "DANA-20261102", "2026-11-02", 147900),
		payoutEntry("gopay", "GOPAY-20261102", "2026-11-02", 98200),
		payoutEntry("ovo", "OVO-20261102", "2026-11-02", 73125),
	}
	ps := Payouts(entries)
	if len(ps) != 4 || ps[2].Provider != "midtrans" || ps[2].Net != 198950 || ps[2].Lines != 2 || ps[0].Provider != "dana" {
		t.Fatalf("payouts %+v", ps)
	}
	doc := buildCAMT053([]camtEntry{
		{"198950.00", "IDR", "CRDT", "BOOK", "2026-11-03", "MIDTRANS SETTLEMENT MIDTRANS-20261102"},
		{"147900", "IDR", "CRDT", "BOOK", "2026-11-04", "TRF FROM DANA INDONESIA"},
		{"98000", "IDR", "CRDT", "BOOK", "2026-11-03", "GOPAY PAYOUT GOPAY-20261102"},
		{"55555", "IDR", "CRDT", "BOOK", "2026-11-03", "SOMEONE ELSE"},
		{"2500", "IDR", "DBIT", "BOOK", "2026-11-03", "BANK FEE"},
		{"73125", "IDR", "CRDT", "PDNG", "2026-11-03", "OVO-20261102"},
	})
	bank, err := ParseCAMT053(strings.NewReader(doc), "stmt.xml")
	if err != nil {
		t.Fatal(err)
	}
	if len(bank) != 5 || bank[4].Amount != -2500 || bank[0].Amount != 198950 || !strings.Contains(bank[0].Ref, "E2E-1") {
		t.Fatalf("bank lines %+v", bank)
	}
	pr := MatchPayouts(ps, bank, 5)
	got := map[string]string{}
	for _, p := range pr.Payouts {
		got[p.Batch] = p.Class + "/" + p.MatchBy
	}
	want := map[string]string{"MIDTRANS-20261102": "in_bank/reference", "DANA-20261102": "in_bank/amount",
		"GOPAY-20261102": "amount_mismatch/reference", "OVO-20261102": "not_in_bank/"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	if len(pr.Unknown) != 1 || pr.Unknown[0].Amount != 55555 || pr.Discrepancies() != 3 {
		t.Errorf("unknown %+v, discrepancies %d; want the 55555 credit and 3", pr.Unknown, pr.Discrepancies())
	}
	// Outside the window the amount match does not count.
	if pr := MatchPayouts(ps, bank, 1); pr.Payouts[0].Class != PayoutNotInBank {
		t.Errorf("dana with a 1-day window: %+v", pr.Payouts[0])
	}
}

func TestBankParsersRefuseBadInput(t *testing.T) {
	for name, doc := range map[string]string{
		"fractional rupiah": buildCAMT053([]camtEntry{{"10.50", "IDR", "CRDT", "BOOK", "2026-11-03", "x"}}),
		"bad indicator":     buildCAMT053([]camtEntry{{"10", "IDR", "CREDIT", "BOOK", "2026-11-03", "x"}}),
		"bad date":          buildCAMT053([]camtEntry{{"10", "IDR", "CRDT", "BOOK", "03/11/2026", "x"}}),
		"not xml":           "booking_date,amount",
	} {
		if _, err := ParseCAMT053(strings.NewReader(doc), "s.xml"); err == nil || !strings.HasPrefix(err.Error(), "s.xml") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	ls, err := ParseBankCSV(strings.NewReader("booking_date,amount,currency,reference\n2026-11-03,198950,IDR,MIDTRANS-20261102\n2026-11-03,-10.00,USD,fee\n"), "b.csv")
	if err != nil || len(ls) != 2 || ls[0].Amount != 198950 || ls[1].Amount != -1000 {
		t.Errorf("bank csv: %+v %v", ls, err)
	}
	if _, err := ParseBankCSV(strings.NewReader("booking_date,amount,currency,reference\n2026-11-03,1.5,IDR,x\n"), "b.csv"); err == nil || !strings.Contains(err.Error(), "b.csv:2: amount") {
		t.Errorf("fractional rupiah in csv: %v", err)
	}
}
