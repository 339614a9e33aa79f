package httpapi

import (
	"testing"
)

// BenchmarkDecodeCreate measures what the API does with a create body
// before routing: strict JSON decoding (amount without a float) and
// validation, including the raw-card-number scan of every free-text field.
func BenchmarkDecodeCreate(b *testing.B) {
	bodies := []struct {
		name string
		body string
	}{
		{"card", `{"amount":1000,"currency":"USD","method":"card","reference":"order-1234567","payment_method_tokens":{"stripe":"pm_card_visa"}}`},
		{"qris", `{"amount":50000,"currency":"IDR","method":"qris","reference":"order-1234567"}`},
		{"full", `{"amount":150000,"currency":"IDR","method":"gopay","reference":"order-1234567","description":"Two coffees and a croissant",
			"customer":{"name":"Budi Santoso","email":"budi@example.com","phone":"+6281234567890"},"country":"ID","capture":"automatic",
			"return_url":"https://shop.example.com/return","metadata":{"cart":"c-42","channel":"web","campaign":"ramadan"}}`},
	}
	for _, tt := range bodies {
		body := []byte(tt.body)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				var cb createBody
				if err := decodeBytes(body, &cb); err != nil {
					b.Fatal(err)
				}
				if _, err := cb.toRequest("m1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
