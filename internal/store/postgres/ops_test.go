package postgres_test

import (
	"testing"

	"github.com/payrouter/payrouter/internal/store/storetest"
)

func TestOpsConformance(t *testing.T) {
	storetest.RunOps(t, func(t *testing.T) storetest.OpsStore { return openFresh(t) })
}
