package sqlstore

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/payrouter/payrouter"
)

// One-statement payment reads.
//
// A payment is a row plus its attempts and refunds. Read by separate
// statements outside a transaction, a write committing between them would
// mix two versions (a refund succeeded that amount_refunded does not count
// yet), so GetPayment used to read the row, the children and the row's
// version again (five statements with FindPayment's lookup, a fifth of a
// webhook's CPU). One statement sees one snapshot in both databases: the
// children come with the row as JSON arrays of their columns (times as
// microseconds since the epoch), aggregated in idx order.

// attemptJSONCols and refundJSONCols are the columns the aggregates carry, in
// the order decodeAttempts and decodeRefunds read them.
const (
	attemptJSONCols = `idx, n, provider, provider_payment_id, idempotency_key, status, error_class,
error_code, error_message, expected_fee, latency_ms, %s`
	refundJSONCols = `idx, id, amount, reason, status, provider_refund_id, failure_code, %s`
)

// readQueries builds the one-statement reads for d: sel, the SELECT … FROM
// payments every list adds its WHERE to, and the point reads.
func readQueries(d Dialect) (sel, get, getMerchant, find string) {
	sel = `SELECT ` + paymentCols + `,
	` + d.ChildRows(fmt.Sprintf(attemptJSONCols, d.Micros("started_at")), "attempts", "payment_id = payments.id", "idx") + `,
	` + d.ChildRows(fmt.Sprintf(refundJSONCols, d.Micros("created_at")), "refunds", "payment_id = payments.id", "idx") + `
	FROM payments`
	get = sel + ` WHERE id = ?`
	getMerchant = get + ` AND merchant_id = ?`
	// Two lookups, not an OR: each uses its own (provider, …) index (the OR
	// form scanned every attempt at the provider); the provider's id first
	// (the key is the order id an adapter sent), and no UNION or ORDER BY,
	// which cost SQLite a temporary table each.
	find = sel + ` WHERE id = coalesce(
		(SELECT payment_id FROM attempts WHERE provider = ? AND provider_payment_id = ? LIMIT 1),
		(SELECT payment_id FROM attempts WHERE provider = ? AND idempotency_key = ? LIMIT 1))`
	return sel, get, getMerchant, find
}

// scanPaymentWhole scans a row of readQueries: the payment with its children.
func scanPaymentWhole(row rowScanner) (*payrouter.Payment, error) {
	var attempts, refunds []byte
	p, err := scanPayment(row, &attempts, &refunds)
	if err != nil {
		return nil, err
	}
	if p.Attempts, err = decodeAttempts(attempts); err != nil {
		return nil, fmt.Errorf("store: payment %s: attempts: %w", p.ID, err)
	}
	if p.Refunds, err = decodeRefunds(refunds); err != nil {
		return nil, fmt.Errorf("store: payment %s: refunds: %w", p.ID, err)
	}
	return p, nil
}

// childRows splits the aggregate into rows of want values each.
func childRows(b []byte, want int) ([][]any, error) {
	var rows [][]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // exact integers: amounts and microseconds
	if err := dec.Decode(&rows); err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) != want {
			return nil, fmt.Errorf("row of %d values, want %d", len(r), want)
		}
	}
	return rows, nil
}

// cols reads typed values off one aggregated row; the first type error sticks.
type cols struct {
	row []any
	i   int
	err error
}

func (c *cols) next() any {
	v := c.row[c.i]
	c.i++
	return v
}

func (c *cols) str() string {
	v := c.next()
	s, ok := v.(string)
	if !ok && c.err == nil {
		c.err = fmt.Errorf("column %d: %T, want a string", c.i-1, v)
	}
	return s
}

func (c *cols) int() int64 {
	v := c.next()
	n, ok := v.(json.Number)
	if !ok {
		if c.err == nil {
			c.err = fmt.Errorf("column %d: %T, want an integer", c.i-1, v)
		}
		return 0
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("column %d: %w", c.i-1, err)
	}
	return i
}

func (c *cols) micros() time.Time { return time.UnixMicro(c.int()).UTC() }

// decodeChildren decodes an aggregate of rows of width values, the first
// of each its idx and the rest read by row, and places them in idx order;
// nil for none.
func decodeChildren[T any](b []byte, width int, row func(c *cols) T) ([]T, error) {
	rows, err := childRows(b, width)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	vs := make([]T, 0, len(rows))
	idx := make([]int64, 0, len(rows))
	c := new(cols) // one per aggregate, not per row: it escapes through row
	for _, r := range rows {
		*c = cols{row: r}
		idx = append(idx, c.int())
		v := row(c)
		if c.err != nil {
			return nil, c.err
		}
		vs = append(vs, v)
	}
	inIdxOrder(vs, idx)
	return vs, nil
}

// decodeAttempts is never nil: "attempts": [] even for a payment without
// any (a hosted checkout before the customer chooses), as the API promises.
// Function calls in a composite literal run left to right: the fields read
// the columns in order.
func decodeAttempts(b []byte) ([]payrouter.Attempt, error) {
	as, err := decodeChildren(b, 12, func(c *cols) payrouter.Attempt {
		return payrouter.Attempt{N: int(c.int()), Provider: c.str(), ProviderPaymentID: c.str(), IdempotencyKey: c.str(),
			Status: payrouter.AttemptStatus(c.str()), ErrorClass: c.str(), ErrorCode: c.str(), ErrorMessage: c.str(),
			ExpectedFee: c.int(), LatencyMS: c.int(), StartedAt: c.micros()}
	})
	if as == nil && err == nil {
		as = []payrouter.Attempt{}
	}
	return as, err
}

// decodeRefunds is nil for none, as a payment without refunds has always
// been read.
func decodeRefunds(b []byte) ([]payrouter.Refund, error) {
	return decodeChildren(b, 8, func(c *cols) payrouter.Refund {
		return payrouter.Refund{ID: c.str(), Amount: c.int(), Reason: c.str(), Status: payrouter.RefundStatus(c.str()),
			ProviderRefundID: c.str(), FailureCode: c.str(), CreatedAt: c.micros()}
	})
}

// inIdxOrder puts rows in the order of their idx column. The aggregates
// already come in that order (the primary key's); this keeps a row's
// position from depending on the query plan.
func inIdxOrder[T any](rows []T, idx []int64) {
	if slices.IsSorted(idx) {
		return
	}
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(idx[a], idx[b]) })
	sorted := make([]T, len(rows))
	for i, o := range order {
		sorted[i] = rows[o]
	}
	copy(rows, sorted)
}
