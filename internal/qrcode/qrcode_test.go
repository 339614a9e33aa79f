package qrcode

import (
	"strings"
	"testing"
)

func TestSVG(t *testing.T) {
	payload := "00020101021226570011ID.DANA.WWW011893600915302259148102090225914810303UMI51440014ID.CO.QRIS.WWW0215ID10200211817450303UMI5204581453033605802ID5910PAYROUTER6007JAKARTA6304ABCD"
	svg, err := SVG(payload, `scan "me" <now>`)
	if err != nil {
		t.Fatal(err)
	}
	s := string(svg)
	// A version-7 or larger code for this payload: at least 45 modules plus the quiet zone.
	if !strings.HasPrefix(s, `<svg class="qr"`) || !strings.Contains(s, `viewBox="0 0 `) || strings.Count(s, "h1v1h-1z") < 300 {
		t.Errorf("not a plausible QR SVG: %.200s", s)
	}
	if !strings.Contains(s, `aria-label="scan &#34;me&#34; &lt;now&gt;"`) {
		t.Errorf("label not escaped: %.300s", s)
	}
	a, _ := SVG("A", "x")
	b, _ := SVG("B", "x")
	if a == b {
		t.Error("different payloads gave the same code")
	}
}
