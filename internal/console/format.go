package console

import (
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/ops"
	"github.com/payrouter/payrouter/internal/recon"
)

// Money formats minor units for people (Rp 150.000, US$19.99): the one
// formatter of every page, payrouter.FormatMoney.
func Money(c payrouter.Currency, minor int64) string { return payrouter.FormatMoney(minor, c) }

// Ago is a short relative time: "12s ago", "5m ago", "3h ago", "2d ago".
func Ago(now, t time.Time) string {
	d := now.Sub(t)
	suffix := " ago"
	if d < 0 {
		d, suffix = -d, " from now"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds%s", int(d.Seconds()), suffix)
	case d < time.Hour:
		return fmt.Sprintf("%dm%s", int(d.Minutes()), suffix)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%s", int(d.Hours()), suffix)
	}
	return fmt.Sprintf("%dd%s", int(d.Hours()/24), suffix)
}

// when renders a time as <time> with the relative form shown and the
// absolute one in datetime and title.
func when(now time.Time) func(t time.Time) template.HTML {
	return func(t time.Time) template.HTML {
		if t.IsZero() {
			return "—"
		}
		abs := t.UTC().Format("2006-01-02 15:04:05 UTC")
		return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`,
			t.UTC().Format(time.RFC3339), abs, template.HTMLEscapeString(Ago(now, t))))
	}
}

func pct(r float64) string { return fmt.Sprintf("%.1f%%", r*100) }

// chart draws the last hour of a provider as two small SVG polylines:
// success rate (0–100 %) and p95 latency (scaled to the hour's maximum).
// Only numbers are interpolated, so the markup is safe as built.
func chart(series []ops.Window) template.HTML {
	const w, h = 240, 48
	n := len(series)
	if n == 0 {
		return ""
	}
	var maxP int64 = 1
	for _, s := range series {
		maxP = max(maxP, s.P95ms)
	}
	var sr, lat, dots strings.Builder
	for i, s := range series {
		x := float64(i) * float64(w) / float64(max(n-1, 1))
		if s.Calls > 0 {
			y := float64(h) - s.SuccessRate*float64(h-4) - 2
			fmt.Fprintf(&sr, "%.1f,%.1f ", x, y)
			fmt.Fprintf(&dots, `<circle class="ok" cx="%.1f" cy="%.1f" r="2"><title>%d calls, %.1f%% ok, p95 %d ms</title></circle>`, x, y, s.Calls, s.SuccessRate*100, s.P95ms)
		}
		fmt.Fprintf(&lat, "%.1f,%.1f ", x, float64(h)-float64(s.P95ms)/float64(maxP)*float64(h-4)-2)
	}
	return template.HTML(fmt.Sprintf(`<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="success rate and p95 latency, last hour">`+
		`<title>last hour: success rate (green), p95 latency up to %d ms (blue)</title>`+
		`<polyline class="lat" points="%s"/><polyline class="ok" points="%s"/>%s</svg>`,
		w, h, w, h, maxP, strings.TrimSpace(lat.String()), strings.TrimSpace(sr.String()), dots.String()))
}

// dayBar is one day of a reconciliation run: what the ledger expected to
// settle and what the provider settled, in minor units of Currency.
type dayBar struct {
	Day               string
	Currency          payrouter.Currency
	Expected, Settled int64
}

// settledByDay sums a run's lines per settlement day (lines without a
// settlement date count on the period's last day), per currency.
func settledByDay(r *recon.RunView) []dayBar {
	idx := map[[2]string]int{}
	var out []dayBar
	for _, l := range r.Lines {
		day := r.To.UTC().Add(-time.Nanosecond).Format("2006-01-02")
		if l.SettledAt != nil {
			day = l.SettledAt.UTC().Format("2006-01-02")
		}
		k := [2]string{day, string(l.Currency)}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, dayBar{Day: day, Currency: l.Currency})
		}
		out[i].Expected += l.Expected
		out[i].Settled += l.Settled
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Currency != out[j].Currency {
			return out[i].Currency < out[j].Currency
		}
		return out[i].Day < out[j].Day
	})
	return out
}

// barChart draws settled beside expected per day (SVG, server-side). The
// heights are a picture only; the figures are in each bar's title.
func barChart(r *recon.RunView) template.HTML {
	days := settledByDay(r)
	if len(days) == 0 {
		return ""
	}
	const h, bw = 60, 10
	var top int64 = 1
	for _, d := range days {
		top = max(top, abs(d.Expected), abs(d.Settled))
	}
	var b strings.Builder
	w := len(days)*(2*bw+8) + 8
	fmt.Fprintf(&b, `<svg class="chart" id="settled-by-day" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="settled vs expected per day">`, w, h+14, w, h+14)
	for i, d := range days {
		x := 8 + i*(2*bw+8)
		he := int(abs(d.Expected) * (h - 2) / top)
		hs := int(abs(d.Settled) * (h - 2) / top)
		fmt.Fprintf(&b, `<rect class="lat" x="%d" y="%d" width="%d" height="%d"><title>%s expected %s</title></rect>`, x, h-he, bw, he, d.Day, Money(d.Currency, d.Expected))
		fmt.Fprintf(&b, `<rect class="ok" x="%d" y="%d" width="%d" height="%d"><title>%s settled %s</title></rect>`, x+bw, h-hs, bw, hs, d.Day, Money(d.Currency, d.Settled))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="8">%s</text>`, x, h+11, template.HTMLEscapeString(d.Day[5:]))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // integers, money strings and escaped dates only
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
