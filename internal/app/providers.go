package app

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/payrouter/payrouter/internal/config"
	"github.com/payrouter/payrouter/internal/sim"
	"github.com/payrouter/payrouter/internal/sim/midtranssim"
	"github.com/payrouter/payrouter/internal/sim/snapsim"
	"github.com/payrouter/payrouter/internal/sim/stripesim"
	"github.com/payrouter/payrouter/internal/sim/xenditsim"
	"github.com/payrouter/payrouter/internal/snapbi"
	"github.com/payrouter/payrouter/providers"
	"github.com/payrouter/payrouter/providers/dana"
	"github.com/payrouter/payrouter/providers/gopay"
	"github.com/payrouter/payrouter/providers/midtrans"
	"github.com/payrouter/payrouter/providers/ovo"
	"github.com/payrouter/payrouter/providers/stripe"
	"github.com/payrouter/payrouter/providers/xendit"
)

// Sandbox credentials: used on both sides (adapter and simulator) when a
// sandbox config leaves a credential empty. They are not secrets.
const (
	sandboxStripeKey      = "sk_test_payrouter_sandbox"
	sandboxStripeWebhook  = "whsec_payrouter_sandbox"
	sandboxMidtransKey    = "SB-Mid-server-payrouter-sandbox"
	sandboxXenditKey      = "xnd_development_payrouter_sandbox"
	sandboxXenditCallback = "payrouter-sandbox-callback-token"
	sandboxSNAPSecret     = "payrouter-sandbox-snap-secret"
)

// Built is the providers made from a config, and in sandbox their simulators.
type Built struct {
	Providers map[string]providers.Provider
	Sims      map[string]*sim.Sim
}

// Caps returns every provider's capabilities.
func (b *Built) Caps() map[string]providers.Capabilities { return capsOf(b.Providers) }

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// BuildProviders makes one adapter per enabled provider (a switch on kind:
// no registration). In sandbox it also mounts a simulator per provider at
// /sim/{name} on mux and points the adapter at it through self (the
// loopback URL of this instance); next actions use public.
func BuildProviders(cfg *config.Config, self, public string, mux *http.ServeMux) (*Built, error) {
	b := &Built{Providers: map[string]providers.Provider{}, Sims: map[string]*sim.Sim{}}
	hc := &http.Client{Transport: providers.NoReplay(&http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second})}
	for _, name := range cfg.ProviderNames() {
		pc := cfg.Providers[name]
		base := pc.BaseURL
		simBase, simPublic := self+"/sim/"+name, public+"/sim/"+name
		notifier := &sim.Notifier{URL: self + "/webhooks/" + name}
		sandbox := cfg.Sandbox && base == ""
		// remote: the simulator runs in `payrouter sim` (cfg.SimURL); the
		// wallets' keys are made per process, so they stay in-process.
		remote := sandbox && cfg.SimURL != "" && !isWallet(pc.Kind)
		if remote {
			simBase = strings.TrimSuffix(cfg.SimURL, "/") + "/sim/" + name
			simPublic = simBase
		}
		if sandbox {
			base = simBase
		}
		timeout := pc.Timeout.D(0)
		var p providers.Provider
		var backend sim.Backend
		var err error
		switch pc.Kind {
		case "stripe":
			key, wh := pc.SecretKey, pc.WebhookSecret
			if sandbox {
				key, wh = or(key, sandboxStripeKey), or(wh, sandboxStripeWebhook)
				backend = stripesim.New(stripesim.Options{SecretKey: key, WebhookSecret: wh, Notifier: notifier, PublicURL: simPublic})
			}
			p, err = stripe.New(stripe.Config{Name: name, SecretKey: key, WebhookSecret: wh, BaseURL: base, HTTPClient: hc, Timeout: timeout})
		case "midtrans":
			key := pc.ServerKey
			if sandbox {
				key = or(key, sandboxMidtransKey)
				backend = midtranssim.New(midtranssim.Options{ServerKey: key, Notifier: notifier, PublicURL: simPublic})
			}
			p, err = midtrans.New(midtrans.Config{Name: name, ServerKey: key, Production: pc.Production, BaseURL: base, HTTPClient: hc, Timeout: timeout})
		case "xendit":
			key, tok := pc.SecretKey, pc.CallbackToken
			if sandbox {
				key, tok = or(key, sandboxXenditKey), or(tok, sandboxXenditCallback)
				backend = xenditsim.New(xenditsim.Options{SecretKey: key, CallbackToken: tok, Notifier: notifier, PublicURL: simPublic,
					SettleAfter: cfg.Reconciliation.Providers[name].SandboxDelay.D(0)})
			}
			p, err = xendit.New(xendit.Config{Name: name, SecretKey: key, CallbackToken: tok, BaseURL: base, HTTPClient: hc, Timeout: timeout})
		case "gopay", "ovo", "dana":
			p, backend, err = buildWallet(name, pc, sandbox, base, simPublic, notifier, hc, timeout)
		default:
			err = fmt.Errorf("unknown kind %q", pc.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: providers.%s: %w", cfg.Path, name, err)
		}
		b.Providers[name] = p
		if backend != nil && !remote {
			s := sim.New(name, backend)
			if s.Settlement != nil {
				s.Settlement.Delay = cfg.Reconciliation.Providers[name].SandboxDelay.D(0)
			}
			s.Mount(mux, "/sim/"+name)
			b.Sims[name] = s
		}
	}
	return b, nil
}

func isWallet(kind string) bool { return kind == "gopay" || kind == "ovo" || kind == "dana" }

// BuildSimulators mounts the sandbox simulators alone on mux, for
// `payrouter sim`: routerURL is where they post webhooks
// (routerURL/webhooks/{name}), public is this server's own base URL (for
// next actions). Only stripe, midtrans and xendit kinds are served: see
// config SimURL.
func BuildSimulators(cfg *config.Config, routerURL, public string, mux *http.ServeMux) (map[string]*sim.Sim, error) {
	c := *cfg
	c.Sandbox, c.SimURL = true, ""
	c.Providers = map[string]config.Provider{}
	for name, pc := range cfg.Providers {
		if !isWallet(pc.Kind) {
			pc.BaseURL = ""
			c.Providers[name] = pc
		}
	}
	b, err := BuildProviders(&c, routerURL, public, mux)
	if err != nil {
		return nil, err
	}
	return b.Sims, nil
}

// buildWallet makes a SNAP BI wallet adapter. In sandbox with no key files,
// fresh RSA key pairs are generated at start for both sides.
func buildWallet(name string, pc config.Provider, sandbox bool, base, simPublic string, notifier *sim.Notifier, hc *http.Client, timeout time.Duration) (providers.Provider, sim.Backend, error) {
	var priv *rsa.PrivateKey
	var walletPub *rsa.PublicKey
	var backend sim.Backend
	var err error
	if pc.PrivateKeyFile != "" {
		if priv, err = snapbi.LoadPrivateKey(pc.PrivateKeyFile); err != nil {
			return nil, nil, err
		}
	}
	if pc.ProviderPublicKeyFile != "" {
		if walletPub, err = snapbi.LoadPublicKey(pc.ProviderPublicKeyFile); err != nil {
			return nil, nil, err
		}
	}
	clientID, secret, merchant := pc.ClientID, pc.ClientSecret, pc.MerchantID
	if sandbox {
		partner, wallet, err := snapbi.GenerateSandboxKeys()
		if err != nil {
			return nil, nil, err
		}
		if priv == nil {
			priv = partner
		}
		walletPub = &wallet.PublicKey
		clientID, secret, merchant = or(clientID, "payrouter-sandbox-"+name), or(secret, sandboxSNAPSecret), or(merchant, "216620000000000000000")
		o := snapsim.Options{ClientID: clientID, ClientSecret: secret, PartnerPublicKey: &priv.PublicKey, WalletPrivateKey: wallet,
			Notifier: notifier, PublicURL: simPublic, MerchantID: merchant}
		switch pc.Kind {
		case "gopay":
			backend = snapsim.NewGoPay(o)
		case "ovo":
			backend = snapsim.NewOVO(o)
		default:
			backend = snapsim.NewDANA(o)
		}
	}
	if priv == nil || walletPub == nil {
		return nil, nil, fmt.Errorf("private_key_file and provider_public_key_file are required outside sandbox")
	}
	wc := snapbi.AdapterConfig{Name: name, ClientID: clientID, ClientSecret: secret, PrivateKey: priv, ProviderPublicKey: walletPub,
		MerchantID: merchant, ChannelID: pc.ChannelID, MCC: pc.MCC, BaseURL: base, HTTPClient: hc, Timeout: timeout}
	var p providers.Provider
	switch pc.Kind {
	case "gopay":
		p, err = gopay.New(wc)
	case "ovo":
		p, err = ovo.New(wc)
	default:
		p, err = dana.New(wc)
	}
	return p, backend, err
}
