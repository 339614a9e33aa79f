//go:build sqlite_cgo

package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net/url"
	"strings"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Driver names the SQLite driver this build uses.
const Driver = "mattn/go-sqlite3 (cgo)"

// openDB opens path through mattn/go-sqlite3, running the pragmas
// (name(value)) on every new connection. The driver is used through a
// connector, not registered under a name.
func openDB(path string, pragmas []string, immediate, queryOnly bool) (*sql.DB, error) {
	q := url.Values{}
	if immediate {
		q.Set("_txlock", "immediate")
	}
	stmts := make([]string, 0, len(pragmas)+1)
	for _, p := range pragmas {
		name, val, _ := strings.Cut(strings.TrimSuffix(p, ")"), "(")
		stmts = append(stmts, "PRAGMA "+name+" = "+val)
	}
	if queryOnly {
		stmts = append(stmts, "PRAGMA query_only = 1")
	}
	drv := &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		for _, st := range stmts {
			if _, err := c.Exec(st, nil); err != nil {
				return err
			}
		}
		return nil
	}}
	return sql.OpenDB(connector{dsn: "file:" + path + "?" + q.Encode(), drv: drv}), nil
}

type connector struct {
	dsn string
	drv *sqlite3.SQLiteDriver
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.drv }

// isDuplicateReference: SQLITE_CONSTRAINT_UNIQUE (see the modernc build).
func isDuplicateReference(err error) bool {
	var e sqlite3.Error
	return errors.As(err, &e) && e.ExtendedCode == sqlite3.ErrConstraintUnique
}
