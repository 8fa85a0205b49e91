package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SMSCounts counts SMS sent by users (outbound messages that took the SMS
// route, fallbacks included) since two points in time.
type SMSCounts struct {
	Minute, Day int
}

// SMSSent counts, for each of jids, the SMS they sent since minute and
// since day (counted only while CountSMSPerUser is on; else none); and the
// SMS everyone sent since minute (counted by whole seconds, so up to a
// second more).
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
	rows, err := s.query(ctx, `SELECT user_bare, sum(CASE WHEN at >= $1 THEN n ELSE 0 END), sum(n)
		FROM sms_user_counts WHERE at >= $2 AND user_bare IN (`+inList(3, len(padded))+`)
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

// CountSMSPerUser turns on (or off) counting each user's SMS, which
// SMSSent reads. The router turns it on when a limit per user is set; with
// none, no per-user count is written. An instance counts only while it is
// on, so instances sharing a database should set the same limits.
func (s *Store) CountSMSPerUser(on bool) { s.userCounts.Store(on) }

// userCount is SMS a user sent at one time (ms), a row of sms_user_counts.
type userCount struct {
	user string
	at   int64
	n    int
}

// addUserSMS counts n SMS more for user at at.
func addUserSMS(cs []userCount, user string, at int64, n int) []userCount {
	for i := range cs {
		if cs[i].user == user && cs[i].at == at {
			cs[i].n += n
			return cs
		}
	}
	return append(cs, userCount{user, at, n})
}

// billed is the SMS a message goes as: a part each (at least one).
func billed(m *Outbound) int { return max(m.Parts, 1) }

// userSMS counts, per sender, those of msgs that go as SMS, at at; nil
// while CountSMSPerUser is off.
func (s *Store) userSMS(msgs []*Outbound, at int64) []userCount {
	if !s.userCounts.Load() {
		return nil
	}
	var cs []userCount
	for _, m := range msgs {
		if m.PeerJID == "" {
			cs = addUserSMS(cs, bare(m.SenderJID), at, billed(m))
		}
	}
	return cs
}

// countUsers inserts cs in tx: on SQLite a cached statement per row, on
// PostgreSQL one statement.
func (s *Store) countUsers(ctx context.Context, tx *sql.Tx, cs []userCount) error {
	if len(cs) == 0 {
		return nil
	}
	if s.dialect == sqlite {
		for _, c := range cs {
			if _, err := s.txExec(ctx, tx, insertUserCounts+`($1, $2, $3)`, c.user, c.at, c.n); err != nil {
				return err
			}
		}
		return nil
	}
	_, err := tx.ExecContext(ctx, insertUserCounts+valuesFrom(1, len(cs), 3), userCountArgs(nil, cs)...)
	return err
}

const insertUserCounts = `INSERT INTO sms_user_counts (user_bare, at, n) VALUES `

func userCountArgs(args []any, cs []userCount) []any {
	for _, c := range cs {
		args = append(args, c.user, c.at, c.n)
	}
	return args
}

// countSMS adds n SMS sent (stored to go as SMS, or fallen back to SMS)
// in the second at to everyone's count.
const countSMS = `INSERT INTO sms_seconds (at, n) VALUES ($1, $2)
	ON CONFLICT (at) DO UPDATE SET n = sms_seconds.n + excluded.n`

// smsCount is how many SMS msgs go as: the parts of those not relayed.
func smsCount(msgs []*Outbound) int {
	n := 0
	for _, m := range msgs {
		if m.PeerJID == "" {
			n += billed(m)
		}
	}
	return n
}
