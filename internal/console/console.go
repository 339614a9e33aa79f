// Package console is the ops console at /console: server-rendered pages
// (html/template, embedded, parsed once; one common layout plus one file
// per view, as miniflux does) over ops.Service — the same calls the JSON
// ops API makes, never a second code path. Sign-in takes an ops key and
// keeps an HttpOnly, SameSite=Strict session cookie; every form carries a
// CSRF token; every response a strict Content-Security-Policy. No
// JavaScript is needed.
//
// A page is one entry in pages (console.go) and one template in
// templates/views; a form action is one entry in actions.
package console

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/payrouter/payrouter"
	"github.com/payrouter/payrouter/internal/ops"
	"github.com/payrouter/payrouter/internal/recon"
)

//go:embed templates static
var files embed.FS

const (
	sessionCookie = "payrouter_console"
	preCSRFCookie = "payrouter_console_csrf" // sign-in form only (no session yet)
	sessionTTL    = 12 * time.Hour
	csp           = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// Console serves /console.
type Console struct {
	svc   *ops.Service
	keys  *ops.Keys
	log   *slog.Logger
	now   func() time.Time
	views map[string]*template.Template
	// Recon serves the reconciliation pages (nil: they say it is off).
	Recon *recon.Service

	mu       sync.Mutex
	sessions map[string]*session // by id; per instance (sign in again after a failover)
}

type session struct {
	actor   ops.Actor
	csrf    string
	expires time.Time
}

// page is a GET page; nav pages are in the menu, in this order.
type page struct {
	path, title, view string
	nav               bool
	load              func(c *Console, r *http.Request, a ops.Actor) (any, error)
}

// action is a POST form; it redirects (see Post/Redirect/Get) or renders.
type action struct {
	path string
	run  func(c *Console, r *http.Request, a ops.Actor) (redirect string, view string, data any, err error)
}

// New parses the templates (once) and returns the console.
func New(svc *ops.Service, keys *ops.Keys, log *slog.Logger) (*Console, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Console{svc: svc, keys: keys, log: log, now: time.Now, views: map[string]*template.Template{}, sessions: map[string]*session{}}
	funcs := template.FuncMap{
		"money": Money, "pct": pct, "chart": chart, "bars": barChart,
		"when": func(t time.Time) template.HTML { return when(c.now())(t) },
		"ms":   func(n int64) string { return fmt.Sprintf("%d ms", n) },
		"bp":   func(n int64) string { return payrouter.FormatDecimal(n, 2) + "%" }, // basis points as a percent
		"json": func(b []byte) string { return string(b) },
	}
	base, err := template.New("layout").Funcs(funcs).ParseFS(files, "templates/common/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	views, err := fs.Glob(files, "templates/views/*.html")
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		t, err := template.Must(base.Clone()).ParseFS(files, v)
		if err != nil {
			return nil, fmt.Errorf("console: %s: %w", v, err)
		}
		c.views[strings.TrimSuffix(strings.TrimPrefix(v, "templates/views/"), ".html")] = t
	}
	return c, nil
}

// Mount registers /console on mux.
func (c *Console) Mount(mux *http.ServeMux) {
	static, _ := fs.Sub(files, "static")
	mux.Handle("GET /console/static/", c.headers(http.StripPrefix("/console/static/", http.FileServerFS(static))))
	mux.Handle("GET /console/signin", c.headers(http.HandlerFunc(c.signinForm)))
	mux.Handle("POST /console/signin", c.headers(http.HandlerFunc(c.signin)))
	mux.Handle("POST /console/signout", c.headers(c.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
		if !c.checkCSRF(r, s.csrf) {
			c.fail(w, r, s, errCSRF)
			return
		}
		c.mu.Lock()
		for id, x := range c.sessions {
			if x == s {
				delete(c.sessions, id)
			}
		}
		c.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/console", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
	})))
	for _, p := range pages {
		mux.Handle("GET "+p.path, c.headers(c.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
			data, err := p.load(c, r, s.actor)
			if err != nil {
				c.fail(w, r, s, err)
				return
			}
			c.render(w, r, s, http.StatusOK, p.view, p.title, data)
		})))
	}
	for _, a := range actions {
		mux.Handle("POST "+a.path, c.headers(c.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
			if !c.checkCSRF(r, s.csrf) {
				c.fail(w, r, s, errCSRF)
				return
			}
			to, view, data, err := a.run(c, r, s.actor)
			switch {
			case err != nil && view == "":
				c.fail(w, r, s, err)
			case view != "":
				status := http.StatusOK
				if err != nil {
					status = ops.StatusOf(err)
				}
				c.render(w, r, s, status, view, titleOf(view), data)
			default:
				http.Redirect(w, r, to, http.StatusSeeOther)
			}
		})))
	}
}

func titleOf(view string) string {
	for _, p := range pages {
		if p.view == view {
			return p.title
		}
	}
	return view
}

type csrfError struct{}

func (csrfError) Error() string {
	return "the form expired or came from elsewhere (CSRF token mismatch): reload the page and try again"
}

var errCSRF error = csrfError{}

func (c *Console) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/console/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

func (c *Console) authed(fn func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "signed out: sign in again", http.StatusUnauthorized)
			return
		}
		fn(w, r, s)
	}
}

func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[ck.Value]
	if s == nil || c.now().After(s.expires) {
		delete(c.sessions, ck.Value)
		return nil
	}
	return s
}

func token() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func (c *Console) checkCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	tok := token()
	http.SetCookie(w, &http.Cookie{Name: preCSRFCookie, Value: tok, Path: "/console/signin", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 3600})
	c.render(w, r, &session{csrf: tok}, http.StatusOK, "signin", "Sign in", map[string]string{"Next": safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(preCSRFCookie)
	if err != nil || !c.checkCSRF(r, ck.Value) {
		c.fail(w, r, &session{}, errCSRF)
		return
	}
	a, ok := c.keys.Authenticate(strings.TrimSpace(r.PostFormValue("key")))
	if !ok {
		tok := token()
		http.SetCookie(w, &http.Cookie{Name: preCSRFCookie, Value: tok, Path: "/console/signin", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 3600})
		c.render(w, r, &session{csrf: tok}, http.StatusUnauthorized, "signin", "Sign in",
			map[string]string{"Next": safeNext(r.PostFormValue("next")), "Error": "That is not an ops key."})
		return
	}
	id := token()
	c.mu.Lock()
	now := c.now()
	for k, s := range c.sessions { // drop expired ones as we go
		if now.After(s.expires) {
			delete(c.sessions, k)
		}
	}
	c.sessions[id] = &session{actor: a, csrf: token(), expires: now.Add(sessionTTL)}
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/console", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL.Seconds())})
	http.SetCookie(w, &http.Cookie{Name: preCSRFCookie, Value: "", Path: "/console/signin", MaxAge: -1})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// safeNext keeps a redirect target inside the console.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/console") || strings.HasPrefix(s, "//") || strings.Contains(s, "\\") {
		return "/console"
	}
	return s
}

// NavItem is one menu entry.
type NavItem struct{ Path, Title string }

// view is what every template gets.
type view struct {
	Title string
	Path  string
	Actor ops.Actor
	CSRF  string
	Nav   []NavItem
	Flash string
	Data  any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title string, data any) {
	t, ok := c.views[name]
	if !ok {
		http.Error(w, "no view "+name, http.StatusInternalServerError)
		return
	}
	v := view{Title: title, Path: r.URL.Path, Actor: s.actor, CSRF: s.csrf, Nav: nav(), Flash: r.URL.Query().Get("msg"), Data: data}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: render", "view", name, "err", err)
		http.Error(w, "internal error (logged)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func nav() []NavItem {
	var out []NavItem
	for _, p := range pages {
		if p.nav {
			out = append(out, NavItem{Path: p.path, Title: p.title})
		}
	}
	return out
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status := ops.StatusOf(err)
	msg := err.Error()
	if err == errCSRF {
		status = http.StatusForbidden
	} else if status == http.StatusInternalServerError {
		c.log.Error("console request failed", "path", r.URL.Path, "err", err)
		msg = "internal error (logged)"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	t := c.views["error"]
	w.WriteHeader(status)
	_ = t.ExecuteTemplate(w, "layout", view{Title: "Error", Path: r.URL.Path, Actor: s.actor, CSRF: s.csrf, Nav: nav(), Data: map[string]any{"Status": status, "Message": msg}})
}
