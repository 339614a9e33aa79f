package router

import (
	"testing"
	"time"

	"github.com/payrouter/payrouter"
)

// A forced-open method is refused with the hook's reason whatever the
// breaker's counts; other methods and a cleared hook are allowed.
func TestForcedOpen(t *testing.T) {
	g := Guard("p", &fake{}, time.Second, BreakerSettings{}, nil)
	if ok, _ := g.Allow(payrouter.MethodCard); !ok {
		t.Fatal("closed breaker refused")
	}
	forced := map[payrouter.Method]string{payrouter.MethodCard: "forced open (maintenance)"}
	g.Forced = func(m payrouter.Method) (bool, string) {
		why, ok := forced[m]
		return !ok, why
	}
	if ok, why := g.Allow(payrouter.MethodCard); ok || why != "forced open (maintenance)" {
		t.Fatalf("forced card: Allow = %v, %q", ok, why)
	}
	if ok, why := g.Allow(payrouter.MethodQRIS); !ok {
		t.Fatalf("qris refused: %q", why)
	}
	delete(forced, payrouter.MethodCard)
	if ok, why := g.Allow(payrouter.MethodCard); !ok {
		t.Fatalf("after auto: refused %q", why)
	}
}
