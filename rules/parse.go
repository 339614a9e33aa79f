package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payrouter/payrouter"
)

// Parse reads the `rules`, `default` and `fees` sections of a config file
// (other top-level keys belong to other packages and are ignored). Inside
// those sections every unknown key, wrong type or invalid value is an error,
// because a typo must never silently widen a rule. It returns an *Error
// listing every problem as `file:line:col: rule "name": message`; YAML
// syntax errors carry the line yaml.v3 reports.
//
// Values: amounts are integers in minor units (0 ≤ n ≤ payrouter.MaxAmount,
// digits and `_` only); fee percents are decimals with at most two places,
// read from the scalar text (never through a float): 2.9 → 290 bp.
func Parse(filename string, data []byte) (*Config, error) {
	p := &parser{file: filename}
	cfg := &Config{File: filename}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.yamlError(err)
		return nil, &Error{Findings: p.errs}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return cfg, nil // empty file: no rules
	}
	top := resolve(doc.Content[0])
	if top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null" {
		return cfg, nil
	}
	if top.Kind != yaml.MappingNode {
		p.errf(top, "config must be a mapping of sections, got %s", kindName(top))
		return nil, &Error{Findings: p.errs}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], resolve(top.Content[i+1])
		switch k.Value {
		case "rules", "default", "fees":
			if seen[k.Value] {
				p.errf(k, "duplicate section %q", k.Value)
				continue
			}
			seen[k.Value] = true
		default:
			continue
		}
		switch k.Value {
		case "rules":
			p.parseRules(cfg, v)
		case "default":
			p.rule = "default"
			cfg.Default = p.parseDefault(v)
			p.rule = ""
		case "fees":
			p.parseFees(cfg, v)
		}
	}
	if len(p.errs) > 0 {
		return nil, &Error{Findings: p.errs}
	}
	return cfg, nil
}

type parser struct {
	file string
	rule string // current rule, for messages
	errs []Finding
}

func posOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func (p *parser) errf(n *yaml.Node, format string, args ...any) {
	f := Finding{File: p.file, Rule: p.rule, Severity: SeverityError, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		f.Line, f.Col = n.Line, n.Column
	}
	p.errs = append(p.errs, f)
}

// yamlError turns a yaml.v3 error into findings. yaml.v3 has no typed
// syntax error with a position, only "yaml: line N: …" text; the line is
// read from there for display, nothing decides on it.
func (p *parser) yamlError(err error) {
	for _, msg := range strings.Split(err.Error(), "\n") {
		msg = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(msg), "yaml:"))
		if msg == "" || msg == "unmarshal errors:" {
			continue
		}
		f := Finding{File: p.file, Severity: SeverityError, Message: "invalid YAML: " + msg}
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			num, tail, _ := strings.Cut(rest, ":")
			if n, err := strconv.Atoi(num); err == nil {
				f.Line = n
				f.Message = "invalid YAML:" + tail
			}
		}
		p.errs = append(p.errs, f)
	}
	if len(p.errs) == 0 {
		p.errs = append(p.errs, Finding{File: p.file, Severity: SeverityError, Message: "invalid YAML"})
	}
}

// resolve follows aliases so anchors can share lists. The parser's own
// recursion is bounded by the schema, so an alias cycle cannot loop.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.ShortTag(), "!!"), n.Value)
	case yaml.AliasNode:
		return "an unresolved alias"
	}
	return "nothing"
}

// fields iterates a mapping's keys, reporting unknown and duplicate keys.
func (p *parser) fields(n *yaml.Node, what string, allowed []string, fn func(key string, k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "%s must be a mapping, got %s", what, kindName(n))
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errf(k, "%s: keys must be plain names", what)
			continue
		}
		known := false
		for _, a := range allowed {
			if a == k.Value {
				known = true
				break
			}
		}
		if !known {
			p.errf(k, "%s: unknown key %q (allowed: %s)", what, k.Value, strings.Join(allowed, ", "))
			continue
		}
		if seen[k.Value] {
			p.errf(k, "%s: duplicate key %q", what, k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, v)
	}
	return true
}

// entries iterates a mapping keyed by names (providers, methods, metadata
// keys), reporting a key that is not a string (as keyWhat) or repeats
// ("<dup> %q"). The caller has checked that n is a mapping.
func (p *parser) entries(n *yaml.Node, keyWhat, dup string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		key, ok := p.str(k, keyWhat)
		if !ok {
			continue
		}
		if seen[key] {
			p.errf(k, "%s %q", dup, key)
			continue
		}
		seen[key] = true
		fn(key, k, v)
	}
}

func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errf(n, "%s must be a string, got %s", what, kindName(n))
		return "", false
	}
	if n.Value == "" {
		p.errf(n, "%s must not be empty", what)
		return "", false
	}
	return n.Value, true
}

// list reads a non-empty list of scalars (a single scalar is refused so
// `currency: IDR` gets a clear message instead of matching oddly).
func (p *parser) list(n *yaml.Node, what string, fn func(s string, n *yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s must be a list like [a, b], got %s", what, kindName(n))
		return
	}
	if len(n.Content) == 0 {
		p.errf(n, "%s: an empty list matches nothing; remove the key to match any", what)
		return
	}
	seen := map[string]bool{}
	for _, e := range n.Content {
		e = resolve(e)
		s, ok := p.str(e, what+" entry")
		if !ok {
			continue
		}
		if seen[s] {
			p.errf(e, "%s: duplicate %q", what, s)
			continue
		}
		seen[s] = true
		fn(s, e)
	}
}

// amount reads a non-negative integer in minor units.
func (p *parser) amount(n *yaml.Node, what string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.errf(n, "%s must be an integer in minor units, got %s", what, kindName(n))
		return 0, false
	}
	s := n.Value
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' {
		p.errf(n, "%s must be a plain decimal integer in minor units, got %q", what, s)
		return 0, false
	}
	digits := strings.ReplaceAll(s, "_", "")
	for _, r := range digits {
		if r < '0' || r > '9' {
			p.errf(n, "%s must be a plain non-negative decimal integer in minor units, got %q", what, s)
			return 0, false
		}
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v > payrouter.MaxAmount {
		p.errf(n, "%s is too large (max %d)", what, payrouter.MaxAmount)
		return 0, false
	}
	return v, true
}

func (p *parser) parseRules(cfg *Config, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "rules must be a list of rules, got %s", kindName(n))
		return
	}
	names := map[string]int{}
	for _, rn := range n.Content {
		rn = resolve(rn)
		r := p.parseRule(rn)
		if r == nil {
			continue
		}
		if r.Name == "default" {
			p.rule = r.Name
			p.errf(rn, "the name \"default\" is reserved for the default section")
		} else if line, dup := names[r.Name]; dup {
			p.rule = r.Name
			p.errf(rn, "duplicate rule name (first at line %d)", line)
		} else if r.Name != "" {
			names[r.Name] = rn.Line
		}
		p.rule = ""
		cfg.Rules = append(cfg.Rules, *r)
	}
}

var ruleKeys = []string{"name", "description", "match", "strategy", "providers", "adaptive"}

func (p *parser) parseRule(n *yaml.Node) *Rule {
	r := &Rule{Pos: posOf(n), Strategy: Priority}
	if n.Kind != yaml.MappingNode {
		p.errf(n, "a rule must be a mapping with name, match, strategy, providers; got %s", kindName(n))
		return nil
	}
	// Find the name first so every message about this rule carries it.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode {
				r.Name = v.Value
			}
		}
	}
	p.rule = r.Name
	defer func() { p.rule = "" }()
	if r.Name == "" {
		p.rule = fmt.Sprintf("#line %d", n.Line)
	}
	var hasName, hasProviders bool
	p.fields(n, "rule", ruleKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			hasName = true
			if s, ok := p.str(v, "name"); ok {
				r.Name = s
			}
		case "description":
			if v.Kind != yaml.ScalarNode {
				p.errf(v, "description must be a string, got %s", kindName(v))
			}
			r.Description = v.Value
		case "match":
			r.Match = p.parseMatch(v)
		case "strategy":
			r.Strategy, r.StrategyPos = p.parseStrategy(v), posOf(v)
		case "providers":
			hasProviders = true
			r.ProvidersPos = posOf(k)
			r.Providers = p.parseProviders(v)
		case "adaptive":
			r.Adaptive = p.parseAdaptive(v)
		}
	})
	if !hasName {
		p.errf(n, "rule has no name")
	}
	if !hasProviders {
		// Check reports the empty candidate list with the position.
		r.ProvidersPos = r.Pos
	}
	return r
}

func (p *parser) parseDefault(n *yaml.Node) *Rule {
	r := &Rule{Name: "default", Pos: posOf(n), Strategy: Priority}
	hasProviders := false
	p.fields(n, "default", []string{"description", "strategy", "providers", "adaptive"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "description":
			r.Description = v.Value
		case "strategy":
			r.Strategy, r.StrategyPos = p.parseStrategy(v), posOf(v)
		case "providers":
			hasProviders = true
			r.ProvidersPos = posOf(k)
			r.Providers = p.parseProviders(v)
		case "adaptive":
			r.Adaptive = p.parseAdaptive(v)
		}
	})
	if !hasProviders {
		r.ProvidersPos = r.Pos
	}
	return r
}

func (p *parser) parseStrategy(n *yaml.Node) Strategy {
	s, ok := p.str(n, "strategy")
	if !ok {
		return Priority
	}
	switch Strategy(s) {
	case Priority, Cheapest, Weighted, Adaptive:
		return Strategy(s)
	}
	p.errf(n, "unknown strategy %q (priority, cheapest, weighted or adaptive)", s)
	return Priority
}

// parseAdaptive reads `adaptive: {window, min_samples, explore, objective}`;
// a missing key takes its DefaultAdaptive value.
func (p *parser) parseAdaptive(n *yaml.Node) *AdaptiveParams {
	a := DefaultAdaptive()
	a.Pos = posOf(n)
	p.fields(n, "adaptive", []string{"window", "min_samples", "explore", "objective"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "window":
			s, ok := p.str(v, "window")
			if !ok {
				return
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				p.errf(v, "window must be a duration like 15m, got %q", s)
				return
			}
			if d < MinAdaptiveWindow || d > MaxAdaptiveWindow {
				p.errf(v, "window %s is outside %s..%s", s, MinAdaptiveWindow, MaxAdaptiveWindow)
				return
			}
			a.Window = d
		case "min_samples":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
				p.errf(v, "min_samples must be an integer, got %s", kindName(v))
				return
			}
			m, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil || m < 1 || m > 1_000_000 {
				p.errf(v, "min_samples must be a decimal integer within 1..1000000, got %q", v.Value)
				return
			}
			a.MinSamples = m
		case "explore":
			tag := v.ShortTag()
			if v.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || v.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
				p.errf(v, "explore must be a share like 0.05, got %s", kindName(v))
				return
			}
			bp, err := payrouter.ParseDecimal(v.Value, 4)
			if err != nil || bp > 5000 {
				p.errf(v, "explore must be a plain decimal within 0..0.5 with at most 4 decimal places, got %q", v.Value)
				return
			}
			a.ExploreBP = bp
		case "objective":
			s, ok := p.str(v, "objective")
			if !ok {
				return
			}
			switch Objective(s) {
			case ObjectiveApproval, ObjectiveNetRevenue:
				a.Objective = Objective(s)
			default:
				p.errf(v, "unknown objective %q (approval or net_revenue)", s)
			}
		}
	})
	return &a
}

func (p *parser) parseProviders(n *yaml.Node) []ProviderRef {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "providers must be a list of names or {name, weight}, got %s", kindName(n))
		return nil
	}
	var out []ProviderRef
	for _, e := range n.Content {
		e = resolve(e)
		ref := ProviderRef{Pos: posOf(e)}
		switch e.Kind {
		case yaml.ScalarNode:
			s, ok := p.str(e, "provider")
			if !ok {
				continue
			}
			ref.Name = s
		case yaml.MappingNode:
			p.fields(e, "provider", []string{"name", "weight"}, func(key string, k, v *yaml.Node) {
				switch key {
				case "name":
					if s, ok := p.str(v, "provider name"); ok {
						ref.Name, ref.Pos = s, posOf(v)
					}
				case "weight":
					ref.HasWeight, ref.WeightPos = true, posOf(v)
					if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
						p.errf(v, "weight must be an integer, got %s", kindName(v))
						return
					}
					w, err := strconv.ParseInt(v.Value, 10, 64)
					if err != nil || w > 1_000_000 || w < -1_000_000 {
						p.errf(v, "weight must be a decimal integer up to 1000000, got %q", v.Value)
						return
					}
					ref.Weight = w
				}
			})
			if ref.Name == "" {
				p.errf(e, "provider entry has no name")
				continue
			}
		default:
			p.errf(e, "provider must be a name or {name, weight}, got %s", kindName(e))
			continue
		}
		out = append(out, ref)
	}
	return out
}

var matchKeys = []string{"currency", "method", "amount", "country", "merchant", "metadata"}

func (p *parser) parseMatch(n *yaml.Node) Match {
	m := Match{Pos: posOf(n)}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return m
	}
	p.fields(n, "match", matchKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "currency":
			m.CurrencyPos = posOf(k)
			p.list(v, "currency", func(s string, e *yaml.Node) {
				c := payrouter.Currency(s)
				if !c.Valid() {
					if _, err := payrouter.ParseCurrency(s); err == nil {
						p.errf(e, "currency %q must be upper case (%s)", s, strings.ToUpper(s))
					} else {
						p.errf(e, "unknown currency %q", s)
					}
					return
				}
				m.Currencies = append(m.Currencies, c)
			})
		case "method":
			m.MethodPos = posOf(k)
			p.list(v, "method", func(s string, e *yaml.Node) {
				if !payrouter.Method(s).Valid() {
					p.errf(e, "unknown method %q (one of %s)", s, methodNames())
					return
				}
				m.Methods = append(m.Methods, payrouter.Method(s))
			})
		case "country":
			m.CountryPos = posOf(k)
			p.list(v, "country", func(s string, e *yaml.Node) {
				if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
					p.errf(e, "country %q must be an ISO 3166-1 alpha-2 code in upper case (ID, US)", s)
					return
				}
				m.Countries = append(m.Countries, s)
			})
		case "merchant":
			m.MerchantPos = posOf(k)
			p.list(v, "merchant", func(s string, e *yaml.Node) { m.Merchants = append(m.Merchants, s) })
		case "amount":
			a := &AmountRange{Pos: posOf(k), Max: payrouter.MaxAmount}
			ok := p.fields(v, "amount", []string{"min", "max"}, func(key string, k, v *yaml.Node) {
				x, ok := p.amount(v, "amount "+key)
				if !ok {
					return
				}
				if key == "min" {
					a.Min, a.HasMin = x, true
				} else {
					a.Max, a.HasMax = x, true
				}
			})
			if !ok {
				return
			}
			if !a.HasMin && !a.HasMax {
				p.errf(v, "amount needs min and/or max")
				return
			}
			if a.Min > a.Max {
				p.errf(v, "amount min %d is above max %d: the rule can never match", a.Min, a.Max)
				return
			}
			m.Amount = a
		case "metadata":
			m.MetadataPos = posOf(k)
			if v.Kind != yaml.MappingNode {
				p.errf(v, "metadata must be a mapping {key: value} or {key: [v1, v2]}, got %s", kindName(v))
				return
			}
			p.entries(v, "metadata key", "metadata: duplicate key", func(key string, kk, vv *yaml.Node) {
				mm := MetadataMatch{Key: key, Pos: posOf(kk)}
				if vv.Kind == yaml.ScalarNode {
					if vv.ShortTag() == "!!null" {
						p.errf(vv, "metadata %q: value must be a string or a list of strings, got null", key)
						return
					}
					mm.Values = []string{vv.Value}
				} else {
					p.list(vv, "metadata "+strconv.Quote(key), func(s string, _ *yaml.Node) { mm.Values = append(mm.Values, s) })
					if len(mm.Values) == 0 {
						return
					}
				}
				m.Metadata = append(m.Metadata, mm)
			})
		}
	})
	return m
}

func methodNames() string {
	s := make([]string, len(payrouter.Methods))
	for i, m := range payrouter.Methods {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

func (p *parser) parseFees(cfg *Config, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errf(n, "fees must be a mapping provider → method → {percent, fixed}, got %s", kindName(n))
		return
	}
	p.entries(n, "fees provider", "fees: duplicate provider", func(prov string, pk, pv *yaml.Node) {
		if pv.Kind != yaml.MappingNode {
			p.errf(pv, "fees %s must be a mapping method → {percent, fixed}, got %s", prov, kindName(pv))
			return
		}
		p.entries(pv, "fees method", "fees "+prov+": duplicate method", func(ms string, mk, mv *yaml.Node) {
			if !payrouter.Method(ms).Valid() {
				p.errf(mk, "fees %s: unknown method %q (one of %s)", prov, ms, methodNames())
				return
			}
			fe := FeeEntry{Provider: prov, Method: payrouter.Method(ms), Pos: posOf(mk), ProviderPos: posOf(pk)}
			what := "fees " + prov + "." + ms
			p.fields(mv, what, []string{"percent", "fixed"}, func(key string, k, v *yaml.Node) {
				switch key {
				case "percent":
					if bp, ok := p.percent(v, what); ok {
						fe.BP = bp
					}
				case "fixed":
					if v.Kind != yaml.MappingNode {
						p.errf(v, "%s fixed must be a mapping currency → minor units, got %s", what, kindName(v))
						return
					}
					fe.Fixed = map[payrouter.Currency]int64{}
					for x := 0; x+1 < len(v.Content); x += 2 {
						ck, cv := v.Content[x], resolve(v.Content[x+1])
						c := payrouter.Currency(ck.Value)
						if ck.Kind != yaml.ScalarNode || !c.Valid() {
							p.errf(ck, "%s fixed: unknown currency %q (upper case ISO code)", what, ck.Value)
							continue
						}
						if _, dup := fe.Fixed[c]; dup {
							p.errf(ck, "%s fixed: duplicate currency %s", what, c)
							continue
						}
						if amt, ok := p.amount(cv, what+" fixed "+string(c)); ok {
							fe.Fixed[c] = amt
						}
					}
				}
			})
			cfg.Fees = append(cfg.Fees, fe)
		})
	})
}

// percent parses a fee percent from the scalar's text, exactly: up to two
// decimal places (whole basis points), 0 ≤ percent ≤ 100.
func (p *parser) percent(n *yaml.Node, what string) (int64, bool) {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
		p.errf(n, "%s percent must be a number like 2.9, got %s", what, kindName(n))
		return 0, false
	}
	bp, err := payrouter.ParseDecimal(n.Value, 2)
	if err != nil {
		p.errf(n, "%s percent %q must be a plain decimal with at most 2 decimal places (whole basis points), like 2.9 or 0.75", what, n.Value)
		return 0, false
	}
	if bp > 10000 {
		p.errf(n, "%s percent %s is above 100", what, n.Value)
		return 0, false
	}
	return bp, true
}
