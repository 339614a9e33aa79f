package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/ops"
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
