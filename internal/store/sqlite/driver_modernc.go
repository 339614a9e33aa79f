//go:build !sqlite_cgo

package sqlite

import (
	"database/sql"
	"errors"
	"net/url"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Driver names the SQLite driver this build uses.
const Driver = "modernc.org/sqlite (pure Go)"

// openDB opens path through modernc.org/sqlite with the given pragmas
// (name(value)) on every connection.
func openDB(path string, pragmas []string, immediate, queryOnly bool) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if immediate {
		q.Set("_txlock", "immediate")
	}
	if queryOnly {
		q.Set("_query_only", "1")
	}
	return sql.Open("sqlite", path+"?"+q.Encode())
}

// isDuplicateReference: SQLITE_CONSTRAINT_UNIQUE. The payments table has
// one unique index besides its primary key (which fails with
// SQLITE_CONSTRAINT_PRIMARYKEY), payments_merchant_reference_key, and the
// store only asks about statements writing payments.
func isDuplicateReference(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
