package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/providers"
)

// RuleSet is a compiled, immutable rule set: safe for concurrent use, never
// modified after Compile, so a reload builds a new one and swaps a pointer.
//
// Compiled form: each rule is a bit in per-dimension bitsets (method,
// currency, country, merchant; a rule without that matcher is set in every
// value's bitset), so Decide ANDs four bitsets and checks amount and
// metadata only on the surviving bits, in rule order. Capabilities and fees
// are flat tables indexed by provider × method × currency.
type RuleSet struct {
	version string
	cfg     *Config

	rules []crule
	def   *crule
	words int

	methodIdx map[payrouter.Method]int // 0 = unknown
	curIdx    map[payrouter.Currency]int
	curs      []payrouter.Currency // by index; [0] = ""
	nm, nc    int

	methodBits [][]uint64 // by method index
	curBits    [][]uint64 // by currency index
	country    dim
	merchant   dim
	// Amount bands: amtStart[k] ≤ amount < amtStart[k+1] selects amtBits[k].
	amtStart []int64
	amtBits  [][]uint64
	noBits   []uint64

	provs    []string
	provIdx  map[string]int
	capsSet  bool
	supports []uint8  // [(p*nm+m)*nc+c]: bit0 automatic, bit1 manual
	whyCap   []string // same index; the drop reason when unsupported
	whyToken []string // by provider
	fees     []*cfee  // [p*nm+m]
}

type dim struct {
	any []uint64 // rules without this matcher
	by  map[string][]uint64
}

func (d *dim) get(v string) []uint64 {
	if len(d.by) == 0 { // no rule has this matcher: skip the hash
		return d.any
	}
	if b, ok := d.by[v]; ok {
		return b
	}
	return d.any
}

type crule struct {
	name     string
	strategy Strategy
	min, max int64
	meta     []MetadataMatch
	provs    []int   // provider indices, written order
	weights  []int64 // written order
	byWeight []int   // positions into provs: weight desc, written order on ties
	adaptive AdaptiveParams
	salt     uint64 // mixes the rule into the adaptive sampler's seed
	reason   string
	desc     string
	src      *Rule
}

// Version is a short content hash of the rules, default and fees (the first
// 12 hex digits of a SHA-256 over their canonical form): equal content gives
// an equal version whatever the formatting, comments or matcher-list order.
func (rs *RuleSet) Version() string { return rs.version }

// Named returns the set under another version name (a stored rule
// version, "v3"), sharing everything else: the set is immutable.
func (rs *RuleSet) Named(version string) *RuleSet {
	c := *rs
	c.version = version
	return &c
}

// Config returns the parsed config the set was compiled from (read only).
func (rs *RuleSet) Config() *Config { return rs.cfg }

// Compile validates cfg against the providers' capabilities and builds the
// immutable RuleSet. It refuses (with an *Error listing file:line:col of
// each) what cannot run: a provider not in caps, a rule with no providers,
// a weighted rule with a missing or non-positive weight, a provider listed
// twice. Problems that still run (an unreachable rule, a provider that can
// take none of the rule's payments) are Check's warnings and errors for
// `payrouter rules check`, not Compile's: a running router keeps routing.
//
// caps maps every configured provider name to its capabilities; a nil map
// skips provider-name validation and capability drops (tools that only
// evaluate rules, such as structural diffs).
func Compile(cfg *Config, caps map[string]providers.Capabilities) (*RuleSet, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if f := compileFindings(cfg, caps); len(f) > 0 {
		return nil, &Error{Findings: f}
	}
	rs := &RuleSet{cfg: cfg, capsSet: caps != nil}
	rs.version = version(cfg)
	rs.compileIndices(cfg, caps)
	rs.compileRules(cfg)
	rs.compileCaps(caps)
	rs.compileFees(cfg)
	return rs, nil
}

// compileIndices numbers the methods, currencies and providers.
func (rs *RuleSet) compileIndices(cfg *Config, caps map[string]providers.Capabilities) {
	// Indices: methods are a closed set; currencies are those the rules,
	// fees or capabilities mention (index 0 = any other).
	rs.methodIdx = map[payrouter.Method]int{}
	for i, m := range payrouter.Methods {
		rs.methodIdx[m] = i + 1
	}
	rs.nm = len(payrouter.Methods) + 1
	rs.curIdx = map[payrouter.Currency]int{}
	rs.curs = []payrouter.Currency{""}
	addCur := func(c payrouter.Currency) {
		if _, ok := rs.curIdx[c]; !ok {
			rs.curIdx[c] = len(rs.curs)
			rs.curs = append(rs.curs, c)
		}
	}
	rs.provIdx = map[string]int{}
	addProv := func(p string) {
		if _, ok := rs.provIdx[p]; !ok {
			rs.provIdx[p] = len(rs.provs)
			rs.provs = append(rs.provs, p)
		}
	}
	all := slices.Clone(cfg.Rules)
	if cfg.Default != nil {
		all = append(all, *cfg.Default)
	}
	for _, r := range all {
		for _, c := range r.Match.Currencies {
			addCur(c)
		}
		for _, p := range r.Providers {
			addProv(p.Name)
		}
	}
	for _, f := range cfg.Fees {
		addProv(f.Provider)
		for c := range f.Fixed {
			addCur(c)
		}
	}
	capNames := make([]string, 0, len(caps))
	for name := range caps {
		capNames = append(capNames, name)
	}
	sort.Strings(capNames)
	for _, name := range capNames {
		for _, curs := range caps[name].Methods {
			for _, c := range curs {
				addCur(c)
			}
		}
	}
	rs.nc = len(rs.curs)
}

// compileRules compiles every rule and its match bitsets.
func (rs *RuleSet) compileRules(cfg *Config) {
	n := len(cfg.Rules)
	rs.words = (n + 63) / 64
	newBits := func() []uint64 { return make([]uint64, rs.words) }
	rs.methodBits = make([][]uint64, rs.nm)
	for i := range rs.methodBits {
		rs.methodBits[i] = newBits()
	}
	rs.curBits = make([][]uint64, rs.nc)
	for i := range rs.curBits {
		rs.curBits[i] = newBits()
	}
	rs.country = dim{any: newBits(), by: map[string][]uint64{}}
	rs.merchant = dim{any: newBits(), by: map[string][]uint64{}}
	rs.rules = make([]crule, n)
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		rs.rules[i] = rs.compileRule(r)
		w, bit := i/64, uint64(1)<<(i%64)
		if len(r.Match.Methods) == 0 {
			for m := range rs.methodBits {
				rs.methodBits[m][w] |= bit
			}
		}
		for _, m := range r.Match.Methods {
			rs.methodBits[rs.methodIdx[m]][w] |= bit
		}
		if len(r.Match.Currencies) == 0 {
			for c := range rs.curBits {
				rs.curBits[c][w] |= bit
			}
		}
		for _, c := range r.Match.Currencies {
			rs.curBits[rs.curIdx[c]][w] |= bit
		}
	}
	fillDim(&rs.country, cfg.Rules, func(r *Rule) []string { return r.Match.Countries })
	fillDim(&rs.merchant, cfg.Rules, func(r *Rule) []string { return r.Match.Merchants })
	rs.compileAmounts()
	if cfg.Default != nil {
		d := rs.compileRule(cfg.Default)
		rs.def = &d
	}
}

// compileCaps tabulates what each provider takes, and why not.
func (rs *RuleSet) compileCaps(caps map[string]providers.Capabilities) {
	np := len(rs.provs)
	rs.supports = make([]uint8, np*rs.nm*rs.nc)
	rs.whyCap = make([]string, len(rs.supports))
	rs.whyToken = make([]string, np)
	for p, name := range rs.provs {
		rs.whyToken[p] = "no card token given for " + name
		c, known := caps[name]
		for m := 0; m < rs.nm; m++ {
			for ci := 0; ci < rs.nc; ci++ {
				k := (p*rs.nm+m)*rs.nc + ci
				if caps == nil {
					rs.supports[k] = 3
					continue
				}
				if known && m > 0 && ci > 0 {
					meth, cur := payrouter.Methods[m-1], rs.curs[ci]
					if c.Supports(meth, cur, payrouter.CaptureAutomatic) {
						rs.supports[k] |= 1
					}
					if c.Supports(meth, cur, payrouter.CaptureManual) {
						rs.supports[k] |= 2
					}
				}
				switch {
				case rs.supports[k] == 0 && m > 0 && ci > 0:
					rs.whyCap[k] = fmt.Sprintf("%s does not take %s in %s", name, payrouter.Methods[m-1], rs.curs[ci])
				case rs.supports[k] == 0:
					rs.whyCap[k] = name + " does not take this method and currency"
				case rs.supports[k]&2 == 0:
					rs.whyCap[k] = fmt.Sprintf("%s has no manual capture for %s", name, payrouter.Methods[m-1])
				}
			}
		}
	}
}

// compileFees tabulates the fees by provider and method.
func (rs *RuleSet) compileFees(cfg *Config) {
	rs.fees = make([]*cfee, len(rs.provs)*rs.nm)
	for _, f := range cfg.Fees {
		cf := &cfee{bp: f.BP, fixed: make([]int64, rs.nc), hasFixed: make([]bool, rs.nc)}
		for c, amt := range f.Fixed {
			cf.fixed[rs.curIdx[c]], cf.hasFixed[rs.curIdx[c]] = amt, true
		}
		rs.fees[rs.provIdx[f.Provider]*rs.nm+rs.methodIdx[f.Method]] = cf
	}
}

// compileAmounts cuts the amount axis at every rule's min and max+1, so
// within one band every rule's range either holds or not: Decide finds
// the band by binary search and ANDs its bitset.
func (rs *RuleSet) compileAmounts() {
	rs.noBits = make([]uint64, rs.words)
	points := []int64{0}
	for i := range rs.rules {
		points = append(points, rs.rules[i].min, rs.rules[i].max+1)
	}
	slices.Sort(points)
	points = slices.Compact(points)
	for _, start := range points {
		b := make([]uint64, rs.words)
		for i := range rs.rules {
			if r := &rs.rules[i]; r.min <= start && start <= r.max {
				b[i/64] |= 1 << (i % 64)
			}
		}
		rs.amtStart = append(rs.amtStart, start)
		rs.amtBits = append(rs.amtBits, b)
	}
}

// methodIndex is the index of m (0 = unknown); a switch beats a map here.
func methodIndex(m payrouter.Method) int {
	switch m {
	case payrouter.MethodCard:
		return 1
	case payrouter.MethodGoPay:
		return 2
	case payrouter.MethodOVO:
		return 3
	case payrouter.MethodDANA:
		return 4
	case payrouter.MethodShopeePay:
		return 5
	case payrouter.MethodQRIS:
		return 6
	case payrouter.MethodBankTransfer:
		return 7
	}
	return 0
}

// currencyIndex is the index of c (0 = not mentioned anywhere); the list
// is short, so a scan beats hashing.
func (rs *RuleSet) currencyIndex(c payrouter.Currency) int {
	for i := 1; i < len(rs.curs); i++ {
		if rs.curs[i] == c {
			return i
		}
	}
	return 0
}

// amountBits returns the bitset of rules whose amount range holds amount.
func (rs *RuleSet) amountBits(amount int64) []uint64 {
	if amount < 0 {
		return rs.noBits
	}
	// Largest k with amtStart[k] ≤ amount; amtStart[0] is 0.
	lo, hi := 0, len(rs.amtStart)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if rs.amtStart[mid] <= amount {
			lo = mid
		} else {
			hi = mid
		}
	}
	return rs.amtBits[lo]
}

func fillDim(d *dim, rules []Rule, values func(*Rule) []string) {
	for i := range rules {
		if len(values(&rules[i])) == 0 {
			d.any[i/64] |= 1 << (i % 64)
		}
	}
	for i := range rules {
		for _, v := range values(&rules[i]) {
			b, ok := d.by[v]
			if !ok {
				b = slices.Clone(d.any)
				d.by[v] = b
			}
			b[i/64] |= 1 << (i % 64)
		}
	}
}

func (rs *RuleSet) compileRule(r *Rule) crule {
	c := crule{name: r.Name, strategy: r.Strategy, min: 0, max: payrouter.MaxAmount, meta: r.Match.Metadata, src: r}
	if c.strategy == "" {
		c.strategy = Priority
	}
	if a := r.Match.Amount; a != nil {
		c.min, c.max = a.Min, a.Max
	}
	names := make([]string, len(r.Providers))
	for i, p := range r.Providers {
		c.provs = append(c.provs, rs.provIdx[p.Name])
		c.weights = append(c.weights, p.Weight)
		c.byWeight = append(c.byWeight, i)
		names[i] = p.Name
		if c.strategy == Weighted {
			names[i] = fmt.Sprintf("%s %d", p.Name, p.Weight)
		}
	}
	sort.SliceStable(c.byWeight, func(a, b int) bool { return c.weights[c.byWeight[a]] > c.weights[c.byWeight[b]] })
	if c.strategy == Adaptive {
		c.adaptive = DefaultAdaptive()
		if r.Adaptive != nil {
			c.adaptive = *r.Adaptive
		}
		c.salt = hashID(r.Name)
	}
	c.desc = describeMatch(&r.Match)
	var how string
	switch c.strategy {
	case Priority:
		how = "priority: " + strings.Join(names, ", ")
	case Cheapest:
		how = "cheapest expected fee among: " + strings.Join(names, ", ")
	case Weighted:
		how = "weighted by payment id: " + strings.Join(names, ", ")
	case Adaptive:
		a := c.adaptive
		how = fmt.Sprintf("adaptive by %s over %s (min_samples %d, explore %s%%), priority: %s",
			a.Objective, a.Window, a.MinSamples, payrouter.FormatDecimal(a.ExploreBP, 2), strings.Join(names, ", "))
	}
	if r.Name == "default" && r.Match.Pos == (Pos{}) {
		c.reason = "no rule matched, default; " + how
	} else {
		c.reason = fmt.Sprintf("rule %s matched (%s); %s", r.Name, c.desc, how)
	}
	return c
}

// describeMatch renders a rule's matchers compactly:
// "currency=IDR, method∈{gopay,ovo}, amount≤100000".
func describeMatch(m *Match) string {
	var parts []string
	set := func(key string, vals []string) {
		switch len(vals) {
		case 0:
		case 1:
			parts = append(parts, key+"="+vals[0])
		default:
			parts = append(parts, key+"∈{"+strings.Join(vals, ",")+"}")
		}
	}
	set("currency", strs(m.Currencies))
	set("method", strs(m.Methods))
	if a := m.Amount; a != nil {
		switch {
		case a.HasMin && a.HasMax:
			parts = append(parts, fmt.Sprintf("%d≤amount≤%d", a.Min, a.Max))
		case a.HasMin:
			parts = append(parts, fmt.Sprintf("amount≥%d", a.Min))
		default:
			parts = append(parts, fmt.Sprintf("amount≤%d", a.Max))
		}
	}
	set("country", m.Countries)
	set("merchant", m.Merchants)
	for _, mm := range m.Metadata {
		set("metadata."+mm.Key, mm.Values)
	}
	if len(parts) == 0 {
		return "matches every payment"
	}
	return strings.Join(parts, ", ")
}

func strs[T ~string](v []T) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = string(x)
	}
	return out
}

// version hashes a canonical rendering of the sections: matcher sets are
// sorted (their order has no meaning), provider lists are not (it does).
func version(cfg *Config) string {
	var b strings.Builder
	rule := func(r *Rule) {
		fmt.Fprintf(&b, "rule %q strategy=%s\n", r.Name, r.Strategy)
		sorted := func(key string, v []string) {
			v = slices.Clone(v)
			sort.Strings(v)
			fmt.Fprintf(&b, " %s=%q\n", key, v)
		}
		sorted("currency", strs(r.Match.Currencies))
		sorted("method", strs(r.Match.Methods))
		sorted("country", r.Match.Countries)
		sorted("merchant", r.Match.Merchants)
		if a := r.Match.Amount; a != nil {
			fmt.Fprintf(&b, " amount=%d..%d\n", a.Min, a.Max)
		}
		meta := slices.Clone(r.Match.Metadata)
		sort.Slice(meta, func(i, j int) bool { return meta[i].Key < meta[j].Key })
		for _, mm := range meta {
			sorted("metadata."+mm.Key, mm.Values)
		}
		for _, p := range r.Providers {
			fmt.Fprintf(&b, " provider %q weight=%d\n", p.Name, p.Weight)
		}
		if r.Strategy == Adaptive {
			a := DefaultAdaptive()
			if r.Adaptive != nil {
				a = *r.Adaptive
			}
			fmt.Fprintf(&b, " adaptive window=%s min=%d explore=%d objective=%s\n", a.Window, a.MinSamples, a.ExploreBP, a.Objective)
		}
	}
	for i := range cfg.Rules {
		rule(&cfg.Rules[i])
	}
	if cfg.Default != nil {
		b.WriteString("default\n")
		rule(cfg.Default)
	}
	fees := slices.Clone(cfg.Fees)
	sort.Slice(fees, func(i, j int) bool {
		if fees[i].Provider != fees[j].Provider {
			return fees[i].Provider < fees[j].Provider
		}
		return fees[i].Method < fees[j].Method
	})
	for _, f := range fees {
		curs := make([]string, 0, len(f.Fixed))
		for c := range f.Fixed {
			curs = append(curs, string(c))
		}
		sort.Strings(curs)
		fmt.Fprintf(&b, "fee %q %s bp=%d", f.Provider, f.Method, f.BP)
		for _, c := range curs {
			fmt.Fprintf(&b, " %s=%d", c, f.Fixed[payrouter.Currency(c)])
		}
		b.WriteString("\n")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])[:12]
}

// ExpectedFee is the fee model's expected fee of provider for a payment of
// amount minor units of currency by method (see ComputeFee for the
// rounding). ok is false when the fee is unknown: no fee entry for that
// provider and method, or a result that would overflow.
func (rs *RuleSet) ExpectedFee(provider string, method payrouter.Method, currency payrouter.Currency, amount int64) (int64, bool) {
	p, ok := rs.provIdx[provider]
	if !ok {
		return 0, false
	}
	return rs.fee(p, rs.methodIdx[method], rs.curIdx[currency], amount)
}

func (rs *RuleSet) fee(p, m, c int, amount int64) (int64, bool) {
	f := rs.fees[p*rs.nm+m]
	if f == nil {
		return 0, false
	}
	return ComputeFee(amount, f.bp, f.fixed[c])
}
