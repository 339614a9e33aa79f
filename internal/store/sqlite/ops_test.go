package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/payrouter/payrouter/internal/store/sqlite"
	"github.com/payrouter/payrouter/internal/store/storetest"
)

func TestOpsConformance(t *testing.T) {
	storetest.RunOps(t, func(t *testing.T) storetest.OpsStore {
		s := open(t, filepath.Join(t.TempDir(), "payrouter.db"), sqlite.Options{})
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
