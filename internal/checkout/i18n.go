package checkout

import (
	"net/http"

	"golang.org/x/text/language"
)

// Languages of the page, matched from Accept-Language (English first: the
// fallback).
var langs = []language.Tag{language.English, language.Indonesian}

func matchLang(r *http.Request) string {
	tags, _, _ := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	_, i, _ := language.NewMatcher(langs).Match(tags...)
	if i == 1 {
		return "id"
	}
	return "en"
}

// messages are the page's words by key, in English and Bahasa Indonesia.
var messages = map[string][2]string{
	"title":             {"Pay %s", "Bayar %s"},
	"pay_to":            {"Payment to", "Pembayaran kepada"},
	"choose":            {"Choose how to pay", "Pilih cara bayar"},
	"cancel":            {"Cancel payment", "Batalkan pembayaran"},
	"card":              {"Card", "Kartu"},
	"gopay":             {"GoPay", "GoPay"},
	"ovo":               {"OVO", "OVO"},
	"dana":              {"DANA", "DANA"},
	"shopeepay":         {"ShopeePay", "ShopeePay"},
	"qris":              {"QRIS (any e-wallet or bank app)", "QRIS (semua e-wallet atau aplikasi bank)"},
	"bank_transfer":     {"Bank transfer (virtual account)", "Transfer bank (virtual account)"},
	"test_cards":        {"Sandbox test cards", "Kartu uji sandbox"},
	"test_cards_note":   {"Sandbox: no real card is used. Pick how the test card behaves.", "Sandbox: tidak ada kartu sungguhan. Pilih perilaku kartu uji."},
	"tok_success":       {"Visa ending 4242: approved", "Visa berakhiran 4242: disetujui"},
	"tok_decline":       {"Card declined", "Kartu ditolak"},
	"tok_insufficient":  {"Insufficient funds", "Saldo tidak cukup"},
	"tok_3ds":           {"Needs 3-D Secure authentication", "Perlu autentikasi 3-D Secure"},
	"choose_bank":       {"Choose your bank", "Pilih bank Anda"},
	"phone":             {"Phone number registered with OVO", "Nomor telepon terdaftar di OVO"},
	"continue":          {"Continue", "Lanjutkan"},
	"back":              {"Choose another method", "Pilih metode lain"},
	"scan_qr":           {"Scan this QR code with your e-wallet or bank app", "Pindai kode QR ini dengan e-wallet atau aplikasi bank Anda"},
	"va_pay":            {"Transfer the exact amount to this virtual account", "Transfer jumlah yang tepat ke virtual account ini"},
	"va_number":         {"Virtual account number", "Nomor virtual account"},
	"biller_code":       {"Biller code", "Kode perusahaan"},
	"bank":              {"Bank", "Bank"},
	"copy":              {"Copy", "Salin"},
	"copied":            {"Copied", "Tersalin"},
	"open_app":          {"Open %s to pay", "Buka %s untuk membayar"},
	"open_page":         {"Continue to %s", "Lanjut ke %s"},
	"authenticate":      {"Authenticate with your bank", "Autentikasi dengan bank Anda"},
	"or_scan":           {"On another device? Scan this code with your phone.", "Di perangkat lain? Pindai kode ini dengan ponsel Anda."},
	"push_sent":         {"We sent a payment request to your %s app. Open it to confirm.", "Permintaan pembayaran dikirim ke aplikasi %s Anda. Buka untuk konfirmasi."},
	"expires":           {"Pay before", "Bayar sebelum"},
	"status":            {"Status", "Status"},
	"waiting":           {"Waiting for your payment…", "Menunggu pembayaran Anda…"},
	"processing":        {"Processing your payment…", "Memproses pembayaran Anda…"},
	"succeeded":         {"Payment successful", "Pembayaran berhasil"},
	"authorized":        {"Payment authorised", "Pembayaran diotorisasi"},
	"failed":            {"Payment failed", "Pembayaran gagal"},
	"canceled":          {"Payment canceled", "Pembayaran dibatalkan"},
	"expired":           {"Payment expired", "Pembayaran kedaluwarsa"},
	"refunded":          {"Payment refunded", "Pembayaran dikembalikan"},
	"return":            {"Return to %s", "Kembali ke %s"},
	"refresh":           {"Refresh status", "Perbarui status"},
	"reference":         {"Order", "Pesanan"},
	"error_rate":        {"Too many attempts. Wait a moment and try again.", "Terlalu banyak percobaan. Tunggu sebentar lalu coba lagi."},
	"error_form":        {"This form has expired. Please try again.", "Formulir kedaluwarsa. Silakan coba lagi."},
	"error_unavailable": {"This payment method is not available right now. Please choose another.", "Metode pembayaran ini sedang tidak tersedia. Silakan pilih yang lain."},
	"error_state":       {"This payment can no longer be changed.", "Pembayaran ini tidak dapat diubah lagi."},
	"not_found":         {"This payment link is not valid.", "Tautan pembayaran ini tidak valid."},
}

func translate(lang, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	if lang == "id" {
		return m[1]
	}
	return m[0]
}
