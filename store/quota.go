package store

import (
	"context"
	"fmt"
	"time"
)

// SMSCounts counts SMS sent by users (outbound messages that took the SMS
// route, fallbacks included) since two points in time.
type SMSCounts struct {
	Minute, Day int
}

// SMSSent counts, for each of jids, the SMS they sent since minute and
// since day; and the SMS everyone sent since minute.
func (s *Store) SMSSent(ctx context.Context, jids []string, minute, day time.Time) (map[string]SMSCounts, int, error) {
	out := make(map[string]SMSCounts, len(jids))
	var global int
	if err := s.queryRow(ctx, `SELECT count(*) FROM messages WHERE created_at >= $1 AND direction = 'out' AND route = 'sms'`,
		minute.UnixMilli()).Scan(&global); err != nil {
		return nil, 0, fmt.Errorf("store: sms sent: %w", err)
	}
	if len(jids) == 0 {
		return out, global, nil
	}
	padded := pad(jids)
	args := strArgs([]any{minute.UnixMilli(), day.UnixMilli()}, padded)
	rows, err := s.query(ctx, `SELECT user_bare,
		sum(CASE WHEN created_at >= $1 THEN 1 ELSE 0 END), count(*)
		FROM messages WHERE direction = 'out' AND route = 'sms' AND created_at >= $2 AND user_bare IN (`+inList(3, len(padded))+`)
		GROUP BY user_bare`, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: sms sent: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			j string
			c SMSCounts
		)
		if err := rows.Scan(&j, &c.Minute, &c.Day); err != nil {
			return nil, 0, err
		}
		out[j] = c
	}
	return out, global, rows.Err()
}
