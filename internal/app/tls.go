package app

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// certificate is the live TLS certificate, swapped by ReloadTLS.
type certificate struct {
	cur atomic.Pointer[tls.Certificate]
}

// ReloadTLS reads server.tls's certificate and key again (SIGHUP: a renewed
// certificate is served to new connections without a restart). A pair
// that does not load keeps the current certificate and is reported.
func (a *App) ReloadTLS() error {
	t := a.Config.Server.TLS
	if !t.Enabled() {
		return nil
	}
	c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return fmt.Errorf("%s: server.tls: %w", a.Config.Path, err)
	}
	a.cert.cur.Store(&c)
	return nil
}

// tlsConfig serves the live certificate.
func (a *App) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return a.cert.cur.Load(), nil
		},
	}
}
