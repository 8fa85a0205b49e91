package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Verification is a pending proof that a JID owns a number: the hash of a
// one-time code sent to it by SMS.
type Verification struct {
	JID       string
	Number    string
	CodeHash  []byte
	Salt      []byte
	Tries     int
	ExpiresAt time.Time
	CreatedAt time.Time
}

// SendCounts says how many codes were sent recently, for rate limits.
type SendCounts struct {
	NumberLast   time.Time // last code to this number (zero if none in the window)
	NumberWindow int       // codes to this number since the window start
	JIDWindow    int       // codes requested by this JID since the window start
	Global       int       // codes sent by anyone since the global window start
}

// CodeSends counts codes sent since windowStart (per number and JID) and
// since globalStart (overall).
func (s *Store) CodeSends(ctx context.Context, number, jid string, windowStart, globalStart time.Time) (SendCounts, error) {
	var (
		c    SendCounts
		last sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT max(sent_at) FROM code_sends WHERE number = $1 AND sent_at >= $3),
		(SELECT count(*) FROM code_sends WHERE number = $1 AND sent_at >= $3),
		(SELECT count(*) FROM code_sends WHERE jid = $2 AND sent_at >= $3),
		(SELECT count(*) FROM code_sends WHERE sent_at >= $4)`,
		number, jid, windowStart.UnixMilli(), globalStart.UnixMilli()).Scan(&last, &c.NumberWindow, &c.JIDWindow, &c.Global)
	if err != nil {
		return c, fmt.Errorf("store: code sends: %w", err)
	}
	if last.Valid {
		c.NumberLast = time.UnixMilli(last.Int64)
	}
	return c, nil
}

// StartVerification records a pending verification (replacing the JID's
// earlier one), counts the code as sent at v.CreatedAt (now if zero), and
// queues the SMS carrying it — all in one transaction, so a code is never
// counted without being sent or sent without being checkable.
func (s *Store) StartVerification(ctx context.Context, v Verification, sms *Outbound) error {
	now := s.ms()
	if !v.CreatedAt.IsZero() {
		now = v.CreatedAt.UnixMilli()
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM verifications WHERE jid = $1`, v.JID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO verifications (jid, number, code_hash, salt, tries, expires_at, created_at)
			VALUES ($1, $2, $3, $4, 0, $5, $6)`, v.JID, v.Number, v.CodeHash, v.Salt, v.ExpiresAt.UnixMilli(), now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO code_sends (number, jid, sent_at) VALUES ($1, $2, $3)`, v.Number, v.JID, now); err != nil {
			return err
		}
		// Forget sends older than two days; no limit looks further back.
		if _, err := tx.ExecContext(ctx, `DELETE FROM code_sends WHERE sent_at < $1`, now-2*24*3600*1000); err != nil {
			return err
		}
		return s.insertOutbound(ctx, tx, []*Outbound{sms}, now)
	})
	if err != nil {
		return fmt.Errorf("store: start verification: %w", err)
	}
	return nil
}

// PendingVerification returns the JID's pending verification, or ErrNotFound.
func (s *Store) PendingVerification(ctx context.Context, jid string) (Verification, error) {
	v := Verification{JID: jid}
	var exp, created int64
	err := s.db.QueryRowContext(ctx, `SELECT number, code_hash, salt, tries, expires_at, created_at FROM verifications WHERE jid = $1`, jid).
		Scan(&v.Number, &v.CodeHash, &v.Salt, &v.Tries, &exp, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("store: verification: %w", err)
	}
	v.ExpiresAt, v.CreatedAt = time.UnixMilli(exp), time.UnixMilli(created)
	return v, nil
}

// CheckVerification runs check against the JID's pending verification under
// a row lock (so concurrent guesses are counted one by one). When check
// accepts the code, the number is bound to the JID (method "sms", as by
// Bind: the address books holding it or the JID's old number are marked
// dirty) and the verification deleted; previous is the JID that held the
// number before.
// When it refuses, the try is counted and the verification deleted once
// tries reach maxTries. A verification expired at time at is deleted
// unchecked. It returns ErrNotFound when nothing is pending.
func (s *Store) CheckVerification(ctx context.Context, jid string, at time.Time, maxTries int, check func(Verification) bool) (ok bool, v Verification, previous string, err error) {
	now := at.UnixMilli()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		q := `SELECT number, code_hash, salt, tries, expires_at, created_at FROM verifications WHERE jid = $1`
		if s.dialect == postgres {
			q += ` FOR UPDATE`
		}
		var exp, created int64
		v = Verification{JID: jid}
		err := tx.QueryRowContext(ctx, q, jid).Scan(&v.Number, &v.CodeHash, &v.Salt, &v.Tries, &exp, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		v.ExpiresAt, v.CreatedAt = time.UnixMilli(exp), time.UnixMilli(created)
		if exp < now {
			_, err := tx.ExecContext(ctx, `DELETE FROM verifications WHERE jid = $1`, jid)
			return err
		}
		if !check(v) {
			v.Tries++
			if v.Tries >= maxTries {
				_, err = tx.ExecContext(ctx, `DELETE FROM verifications WHERE jid = $1`, jid)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE verifications SET tries = $1 WHERE jid = $2`, v.Tries, jid)
			}
			return err
		}
		ok = true
		if _, err := tx.ExecContext(ctx, `DELETE FROM verifications WHERE jid = $1`, jid); err != nil {
			return err
		}
		previous, err = bindTx(ctx, tx, v.Number, jid, "sms", now)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return false, v, "", ErrNotFound
	}
	if err != nil {
		return false, v, "", fmt.Errorf("store: check verification: %w", err)
	}
	return ok, v, previous, nil
}

// CommandSession is the state of a multi-stage ad-hoc command, kept in the
// store so the next stage may reach another instance.
type CommandSession struct {
	ID        string
	JID       string
	Node      string
	Stage     int
	Data      string
	ExpiresAt time.Time
}

// PutCommandSession creates or replaces a session, and prunes expired ones.
func (s *Store) PutCommandSession(ctx context.Context, cs CommandSession) error {
	now := s.ms()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM command_sessions WHERE id = $1 OR expires_at < $2`, cs.ID, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO command_sessions (id, jid, node, stage, data, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			cs.ID, cs.JID, cs.Node, cs.Stage, cs.Data, cs.ExpiresAt.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("store: command session: %w", err)
	}
	return nil
}

// CommandSession returns a live session owned by jid, or ErrNotFound.
func (s *Store) CommandSession(ctx context.Context, id, jid string) (CommandSession, error) {
	cs := CommandSession{ID: id, JID: jid}
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT node, stage, data, expires_at FROM command_sessions WHERE id = $1 AND jid = $2 AND expires_at >= $3`,
		id, jid, s.ms()).Scan(&cs.Node, &cs.Stage, &cs.Data, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return cs, ErrNotFound
	}
	if err != nil {
		return cs, fmt.Errorf("store: command session: %w", err)
	}
	cs.ExpiresAt = time.UnixMilli(exp)
	return cs, nil
}

// DeleteCommandSession ends a session.
func (s *Store) DeleteCommandSession(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM command_sessions WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: command session: %w", err)
	}
	return nil
}
