// Package qrcode renders QR codes (QRIS payloads, payment links) as inline
// SVG for the checkout pages, on boombuler/barcode's encoder. Inline SVG
// needs no image request and no Content-Security-Policy exception.
package qrcode

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/boombuler/barcode/qr"
)

// SVG renders content as a QR code (error correction M) with a 4-module
// quiet zone, sized by its container; label is its accessible name.
func SVG(content, label string) (template.HTML, error) {
	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("qrcode: %w", err)
	}
	n := code.Bounds().Dx()
	var d strings.Builder
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if r, _, _, _ := code.At(x, y).RGBA(); r == 0 { // a dark module
				fmt.Fprintf(&d, "M%d %dh1v1h-1z", x+4, y+4)
			}
		}
	}
	size := n + 8
	// Built from integers and an escaped label only.
	return template.HTML(fmt.Sprintf(`<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s" shape-rendering="crispEdges"><rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="%s"/></svg>`,
		size, size, template.HTMLEscapeString(label), size, size, d.String())), nil
}
