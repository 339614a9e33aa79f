// Package browsertest drives pages in a real headless Chromium through
// chromedp, for tests of the server-rendered pages (console, hosted
// checkout). The browser comes from PAYROUTER_TEST_CHROMIUM; without it the
// test is skipped with a message saying so. Screenshots go to
// PAYROUTER_TEST_ARTEFACTS (kept after the run) or a t.TempDir().
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Browser is one headless Chromium with one tab.
type Browser struct {
	Ctx       context.Context // the tab, for chromedp.Run / chromedp.Do
	artefacts string
	t         testing.TB
	n         int
}

// Timeout bounds each Do, Text and Screenshot.
const Timeout = 30 * time.Second

// Options shape the browser: a window size (0: 1280×900, a desktop) and
// JavaScript off (pages must work without it).
type Options struct {
	Width, Height int
	NoJavaScript  bool
}

// Start launches Chromium headless (--no-sandbox: tests run as root in CI)
// and closes it at cleanup.
func Start(t testing.TB) *Browser {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Browser {
	t.Helper()
	if o.Width == 0 || o.Height == 0 {
		o.Width, o.Height = 1280, 900
	}
	bin := os.Getenv("PAYROUTER_TEST_CHROMIUM")
	if bin == "" {
		t.Skip("PAYROUTER_TEST_CHROMIUM is unset; set it to a Chromium binary (e.g. /usr/bin/chromium) to run the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(o.Width, o.Height),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancelC(); cancelA() })
	// The first run starts the browser and binds it to ctx: no timeout here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	if o.NoJavaScript {
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatalf("disable JavaScript: %v", err)
		}
	}
	dir := os.Getenv("PAYROUTER_TEST_ARTEFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &Browser{Ctx: ctx, artefacts: dir, t: t}
}

// Do runs steps in the tab, failing the test on error (with a screenshot
// of where it stopped).
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.Screenshot("failure")
		b.t.Fatalf("browser: %v", err)
	}
}

// Text returns the visible text of the first element matching the CSS
// selector sel, once it is visible.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, Timeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.Screenshot("failure")
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// Screenshot saves a full-page PNG named NN-name.png in the artefacts
// directory and returns its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	b.n++
	ctx, cancel := context.WithTimeout(b.Ctx, Timeout)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.artefacts, fmt.Sprintf("%02d-%s.png", b.n, strings.NewReplacer("/", "_", " ", "_").Replace(name)))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Errorf("write screenshot: %v", err)
		return ""
	}
	b.t.Logf("screenshot %s", path)
	return path
}
