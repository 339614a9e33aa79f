package rules

import (
	"math/bits"

	"github.com/payrouter/payrouter"
)

// Input is what routing looks at. Amount is in minor units of Currency;
// Country is ISO 3166-1 alpha-2 in upper case (the caller normalizes).
type Input struct {
	PaymentID  string
	MerchantID string
	Amount     int64
	Currency   payrouter.Currency
	Method     payrouter.Method
	Country    string
	Metadata   map[string]string
	Capture    payrouter.CaptureMode // "" = automatic
	Tokens     map[string]string     // card tokens by provider name
	Pinned     string                // optional: only this provider
	// Approvals feeds the adaptive strategy; nil counts as no samples.
	Approvals Approvals
}

// Decision is the outcome of Decide: the matched rule (empty when nothing
// matched and there is no default), the rules version, the strategy, the
// ordered candidates to try, the candidates dropped with why, and a short
// human reason.
type Decision struct {
	Rule       string      `json:"rule"`
	Version    string      `json:"rules_version"`
	Strategy   string      `json:"strategy"`
	Candidates []Candidate `json:"candidates"`
	Dropped    []Dropped   `json:"dropped"`
	Reason     string      `json:"reason"`
	// Adaptive rules only: the figures behind the order (in the order of
	// Candidates), how they were used, and the rule's parameters.
	Scores   []Score        `json:"scores,omitempty"`
	Mode     AdaptiveMode   `json:"adaptive_mode,omitempty"`
	Adaptive AdaptiveParams `json:"-"`
}

// Candidate is one provider to try, in order. ExpectedFee is in minor
// units of the payment's currency and meaningful only when FeeKnown.
type Candidate struct {
	Provider    string `json:"provider"`
	ExpectedFee int64  `json:"expected_fee"`
	FeeKnown    bool   `json:"fee_known"`
	pos         int    // position in the rule's provider list
}

// Dropped is a candidate of the rule that this payment cannot go to.
type Dropped struct {
	Provider string `json:"provider"`
	Why      string `json:"why"`
}

const (
	whyPinned = "not the pinned provider"
	noRoute   = "no rule matched and there is no default"
)

// Decide routes in into out, reusing out's slices: with slices of enough
// capacity it does not allocate. It never fails: a payment no rule matches
// (and no default) gets an empty Rule and no candidates, and a rule whose
// candidates were all dropped gets no candidates; the caller answers
// no_route. Safe for concurrent use.
func (rs *RuleSet) Decide(in *Input, out *Decision) {
	out.Version = rs.version
	out.Candidates = out.Candidates[:0]
	out.Dropped = out.Dropped[:0]
	out.Scores, out.Mode = out.Scores[:0], ""
	mi, ci := methodIndex(in.Method), rs.currencyIndex(in.Currency)
	r := rs.match(in, mi, ci)
	if r == nil {
		out.Rule, out.Strategy, out.Reason = "", "", noRoute
		return
	}
	out.Rule, out.Strategy, out.Reason = r.name, string(r.strategy), r.reason

	capBit := uint8(1)
	if in.Capture == payrouter.CaptureManual {
		capBit = 2
	}
	card := in.Method == payrouter.MethodCard
	for i, p := range r.provs {
		name := rs.provs[p]
		k := (p*rs.nm+mi)*rs.nc + ci
		switch {
		case in.Pinned != "" && in.Pinned != name:
			out.Dropped = append(out.Dropped, Dropped{Provider: name, Why: whyPinned})
			continue
		case rs.supports[k]&capBit == 0:
			out.Dropped = append(out.Dropped, Dropped{Provider: name, Why: rs.whyCap[k]})
			continue
		case card && in.Tokens[name] == "":
			out.Dropped = append(out.Dropped, Dropped{Provider: name, Why: rs.whyToken[p]})
			continue
		}
		fee, ok := rs.fee(p, mi, ci, in.Amount)
		out.Candidates = append(out.Candidates, Candidate{Provider: name, ExpectedFee: fee, FeeKnown: ok, pos: i})
	}
	switch r.strategy {
	case Cheapest:
		sortCandidates(out.Candidates, cheaper)
	case Weighted:
		r.orderWeighted(in.PaymentID, out.Candidates)
	case Adaptive:
		out.Adaptive = r.adaptive
		r.orderAdaptive(in, out.Candidates, out)
	}
}

// match returns the first rule whose matchers all hold, or the default.
func (rs *RuleSet) match(in *Input, mi, ci int) *crule {
	mb, cb := rs.methodBits[mi], rs.curBits[ci]
	co, me := rs.country.get(in.Country), rs.merchant.get(in.MerchantID)
	ab := rs.amountBits(in.Amount)
	for w := 0; w < rs.words; w++ {
		x := mb[w] & cb[w] & co[w] & me[w] & ab[w]
		for x != 0 {
			i := w*64 + bits.TrailingZeros64(x)
			x &= x - 1
			if r := &rs.rules[i]; metaOK(r.meta, in.Metadata) {
				return r
			}
		}
	}
	return rs.def
}

func metaOK(conds []MetadataMatch, md map[string]string) bool {
	for _, c := range conds {
		v, ok := md[c.Key]
		if !ok {
			return false
		}
		found := false
		for _, want := range c.Values {
			if v == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// cheaper orders known fees before unknown ones, then by fee, then by the
// written order: a stable, total order.
func cheaper(a, b *Candidate) bool {
	if a.FeeKnown != b.FeeKnown {
		return a.FeeKnown
	}
	if a.FeeKnown && a.ExpectedFee != b.ExpectedFee {
		return a.ExpectedFee < b.ExpectedFee
	}
	return a.pos < b.pos
}

// sortCandidates is an insertion sort: candidate lists are short, and
// sort.Slice would allocate.
func sortCandidates(c []Candidate, less func(a, b *Candidate) bool) {
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && less(&c[j], &c[j-1]); j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

// orderWeighted puts first the candidate the payment id hashes to, in
// proportion to the weights of the remaining candidates, then the rest by
// descending weight (written order on ties). The same id always gives the
// same order for the same candidates, so a retry lands on the same provider.
func (r *crule) orderWeighted(paymentID string, c []Candidate) {
	if len(c) == 0 {
		return
	}
	var total uint64
	for i := range c {
		total += uint64(r.weights[c[i].pos])
	}
	if total == 0 {
		return
	}
	// The high 64 bits of h × total are uniform in [0, total) when h is
	// uniform, without the bias of the low bits that h % total would use.
	pick, _ := bits.Mul64(hashID(paymentID), total)
	first := 0
	for i := range c {
		w := uint64(r.weights[c[i].pos])
		if pick < w {
			first = i
			break
		}
		pick -= w
	}
	c[0], c[first] = c[first], c[0]
	rest := c[1:]
	sortCandidates(rest, func(a, b *Candidate) bool {
		wa, wb := r.weights[a.pos], r.weights[b.pos]
		if wa != wb {
			return wa > wb
		}
		return a.pos < b.pos
	})
}

// hashID is FNV-1a 64 of the payment id with a murmur3 finalizer, so
// sequential ids (pay_0001, pay_0002) spread evenly. No allocation.
func hashID(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fd1a85ec53
	h ^= h >> 33
	return h
}
