package sim

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/qrcode"
)

// money formats a page amount (payrouter minor units) like the provider's
// page: Rp 150.000, US$19.99.
func money(amount int64, currency string) string {
	c := payrouter.Currency(strings.ToUpper(currency))
	if !c.Valid() {
		return fmt.Sprintf("%d %s", amount, currency)
	}
	return payrouter.FormatMoney(amount, c)
}

// qrSVG renders a QR payload (empty on an encoder error).
func qrSVG(content string) template.HTML {
	svg, _ := qrcode.SVG(content, "QR code")
	return svg
}
