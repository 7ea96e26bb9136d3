package testutil

import (
	"context"
	"database/sql"
	"fmt"
)

// EachRow runs query on db and calls fn with the column names and the
// values of each row (fn must not keep vals: it is reused).
func EachRow(ctx context.Context, db *sql.DB, query string, fn func(cols []string, vals []any)) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("%s: %w", query, err)
		}
		fn(cols, vals)
	}
	return rows.Err()
}
