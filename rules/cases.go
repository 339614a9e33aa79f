package rules

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/payrouter/payrouter"
)

// Case is one routing test written by ops: payment attributes and the rule
// and provider order they expect (after capability, token and pin drops).
type Case struct {
	Name    string
	Pos     Pos
	Input   Input
	Expect  Expect
	Dropped []string
}

// Expect is a case's expectation; an empty Rule or a nil Providers is not
// checked (HasProviders distinguishes `providers: []`).
type Expect struct {
	Rule         string
	Providers    []string
	HasProviders bool
}

// CaseResult is a case's outcome.
type CaseResult struct {
	Case     *Case
	Pass     bool
	Got      Decision
	Failures []string // what differed, for people
}

// ParseCases reads a cases file: a list of
//
//   - name: gopay small
//     payment: {amount: 150000, currency: IDR, method: gopay, country: ID,
//     merchant: demo, metadata: {k: v}, id: pay_1, capture: automatic,
//     tokens: {stripe: tok_sandbox_success}, provider: ""}
//     expect: {rule: idr-wallets, providers: [midtrans, gopay]}
//
// Unknown keys and invalid values are errors; it returns an *Error listing
// each with file:line:col. Amounts are integers in minor units.
func ParseCases(filename string, data []byte) ([]Case, error) {
	p := &parser{file: filename}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.yamlError(err)
		return nil, &Error{Findings: p.errs}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{Findings: []Finding{{File: filename, Line: 1, Severity: SeverityError, Message: "no cases"}}}
	}
	top := resolve(doc.Content[0])
	if top.Kind == yaml.MappingNode && len(top.Content) == 2 && top.Content[0].Value == "cases" {
		top = resolve(top.Content[1])
	}
	if top.Kind != yaml.SequenceNode {
		p.errf(top, "cases file must be a list of cases, got %s", kindName(top))
		return nil, &Error{Findings: p.errs}
	}
	var out []Case
	names := map[string]bool{}
	for _, n := range top.Content {
		n = resolve(n)
		c := Case{Pos: posOf(n), Input: Input{Capture: payrouter.CaptureAutomatic}}
		p.rule = fmt.Sprintf("case at line %d", n.Line)
		var hasPayment bool
		p.fields(n, "case", []string{"name", "payment", "expect"}, func(key string, k, v *yaml.Node) {
			switch key {
			case "name":
				if s, ok := p.str(v, "name"); ok {
					c.Name = s
					if names[s] {
						p.errf(v, "duplicate case name %q", s)
					}
					names[s] = true
				}
			case "payment":
				hasPayment = true
				p.parseCasePayment(v, &c.Input)
			case "expect":
				p.fields(v, "expect", []string{"rule", "providers", "dropped"}, func(key string, k, v *yaml.Node) {
					switch key {
					case "rule":
						c.Expect.Rule, _ = p.str(v, "expect.rule")
					case "providers":
						c.Expect.HasProviders = true
						c.Expect.Providers = p.names(v, "expect.providers")
					case "dropped":
						c.Dropped = p.names(v, "expect.dropped")
					}
				})
			}
		})
		if c.Name == "" {
			c.Name = fmt.Sprintf("line %d", n.Line)
		}
		if !hasPayment {
			p.errf(n, "case %q has no payment", c.Name)
		}
		if c.Input.PaymentID == "" {
			c.Input.PaymentID = "case_" + c.Name
		}
		out = append(out, c)
	}
	if len(p.errs) > 0 {
		return nil, &Error{Findings: p.errs}
	}
	return out, nil
}

// names reads a possibly empty list of names.
func (p *parser) names(n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s must be a list, got %s", what, kindName(n))
		return nil
	}
	out := []string{}
	for _, e := range n.Content {
		if s, ok := p.str(resolve(e), what+" entry"); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) stringMap(n *yaml.Node, what string) map[string]string {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "%s must be a mapping, got %s", what, kindName(n))
		return nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if v.Kind != yaml.ScalarNode {
			p.errf(v, "%s %q must be a string, got %s", what, k.Value, kindName(v))
			continue
		}
		m[k.Value] = v.Value
	}
	return m
}

func (p *parser) parseCasePayment(n *yaml.Node, in *Input) {
	var hasAmount, hasCurrency, hasMethod bool
	p.fields(n, "payment", []string{"amount", "currency", "method", "country", "merchant", "metadata", "id", "capture", "tokens", "provider"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "amount":
			in.Amount, hasAmount = p.amount(v, "amount")
		case "currency":
			if s, ok := p.str(v, "currency"); ok {
				c, err := payrouter.ParseCurrency(s)
				if err != nil {
					p.errf(v, "unknown currency %q", s)
				}
				in.Currency, hasCurrency = c, err == nil
			}
		case "method":
			if s, ok := p.str(v, "method"); ok {
				if !payrouter.Method(s).Valid() {
					p.errf(v, "unknown method %q (one of %s)", s, methodNames())
				}
				in.Method, hasMethod = payrouter.Method(s), true
			}
		case "country":
			if s, ok := p.str(v, "country"); ok {
				in.Country = strings.ToUpper(s)
			}
		case "merchant":
			in.MerchantID, _ = p.str(v, "merchant")
		case "id":
			in.PaymentID, _ = p.str(v, "id")
		case "provider":
			in.Pinned, _ = p.str(v, "provider")
		case "capture":
			if s, ok := p.str(v, "capture"); ok {
				switch c := payrouter.CaptureMode(s); c {
				case payrouter.CaptureAutomatic, payrouter.CaptureManual:
					in.Capture = c
				default:
					p.errf(v, "capture must be automatic or manual, got %q", s)
				}
			}
		case "metadata":
			in.Metadata = p.stringMap(v, "metadata")
		case "tokens":
			in.Tokens = p.stringMap(v, "tokens")
		}
	})
	if n.Kind == yaml.MappingNode {
		for _, f := range []struct {
			ok   bool
			name string
		}{{hasAmount, "amount"}, {hasCurrency, "currency"}, {hasMethod, "method"}} {
			if !f.ok {
				p.errf(n, "payment needs %s", f.name)
			}
		}
	}
}

// RunCases decides every case with rs and compares.
func RunCases(rs *RuleSet, cases []Case) []CaseResult {
	out := make([]CaseResult, len(cases))
	for i := range cases {
		c := &cases[i]
		res := CaseResult{Case: c}
		rs.Decide(&c.Input, &res.Got)
		if c.Expect.Rule != "" && c.Expect.Rule != res.Got.Rule {
			res.Failures = append(res.Failures, fmt.Sprintf("rule: want %s, got %s", c.Expect.Rule, orNone(res.Got.Rule)))
		}
		got := CandidateNames(&res.Got)
		if c.Expect.HasProviders && !slices.Equal(got, c.Expect.Providers) {
			res.Failures = append(res.Failures, fmt.Sprintf("providers: want [%s], got [%s]", strings.Join(c.Expect.Providers, ", "), strings.Join(got, ", ")))
		}
		if c.Dropped != nil {
			var dropped []string
			for _, d := range res.Got.Dropped {
				dropped = append(dropped, d.Provider)
			}
			if !slices.Equal(dropped, c.Dropped) && !(len(dropped) == 0 && len(c.Dropped) == 0) {
				res.Failures = append(res.Failures, fmt.Sprintf("dropped: want [%s], got [%s]", strings.Join(c.Dropped, ", "), strings.Join(dropped, ", ")))
			}
		}
		res.Pass = len(res.Failures) == 0
		out[i] = res
	}
	return out
}

// CandidateNames lists a decision's candidates' providers in order.
func CandidateNames(d *Decision) []string {
	names := make([]string, len(d.Candidates))
	for i, c := range d.Candidates {
		names[i] = c.Provider
	}
	return names
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
