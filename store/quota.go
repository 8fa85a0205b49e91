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
// since day; and the SMS everyone sent since minute (counted by whole
// seconds, so up to a second more).
func (s *Store) SMSSent(ctx context.Context, jids []string, minute, day time.Time) (map[string]SMSCounts, int, error) {
	out := make(map[string]SMSCounts, len(jids))
	var global int
	if err := s.queryRow(ctx, `SELECT coalesce(sum(n), 0) FROM sms_seconds WHERE at >= $1`,
		minute.Unix()).Scan(&global); err != nil {
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

// countSMS adds n SMS sent (stored to go as SMS, or fallen back to SMS)
// in the second at to everyone's count.
const countSMS = `INSERT INTO sms_seconds (at, n) VALUES ($1, $2)
	ON CONFLICT (at) DO UPDATE SET n = sms_seconds.n + excluded.n`

// smsCount is how many of msgs go as SMS.
func smsCount(msgs []*Outbound) int {
	n := 0
	for _, m := range msgs {
		if m.PeerJID == "" {
			n++
		}
	}
	return n
}
