package sqlstore

import (
	"fmt"
	"time"
)

// timeDest scans a NOT NULL time stored either as microseconds since the
// Unix epoch (SQLite) or as a timestamp (PostgreSQL), always in UTC.
type timeDest struct{ p *time.Time }

func (d timeDest) Scan(src any) error {
	t, ok, err := scanTime(src)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("unexpected NULL time")
	}
	*d.p = t
	return nil
}

// nullTimeDest scans a nullable time; NULL is a nil pointer.
type nullTimeDest struct{ p **time.Time }

func (d nullTimeDest) Scan(src any) error {
	t, ok, err := scanTime(src)
	if err != nil {
		return err
	}
	if !ok {
		*d.p = nil
		return nil
	}
	*d.p = &t
	return nil
}

func scanTime(src any) (time.Time, bool, error) {
	switch v := src.(type) {
	case nil:
		return time.Time{}, false, nil
	case int64:
		return time.UnixMicro(v).UTC(), true, nil
	case time.Time:
		return v.UTC(), true, nil
	}
	return time.Time{}, false, fmt.Errorf("cannot scan %T as a time", src)
}
