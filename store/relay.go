package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// StateRelayed is an outbound message handed to its recipient over XMPP,
// waiting for a receipt; it becomes delivered on the receipt, or queued for
// SMS (fallback) when none comes in time. StateSent is one handed on whose
// delivery nothing will confirm: relayed with no fallback to wait for (it
// is off, or the message too long for SMS), or submitted as SMS with no
// receipt within the wait (see EndReceiptWaits). Its life is over, unless
// a receipt (delivered) or a bounce (failed) still comes.
const (
	StateRelayed = "relayed"
	StateSent    = "sent"
)

// dueRelays reads up to $2 relayed messages due at $1 (ms) from
// messages_work.
const dueRelays = `SELECT id, user_jid, peer_number FROM messages
	WHERE ` + inWork + ` AND state = 'relayed' AND next_attempt_at > 0 AND next_attempt_at <= $1 ORDER BY id LIMIT $2`

// DueRelays returns relayed messages whose fallback time has come, at most
// limit of them, oldest first: their ids, senders and destinations, for the
// router to check against the SMS limits before FallBackIDs moves them.
func (s *Store) DueRelays(ctx context.Context, now time.Time, limit int) ([]*Outbound, error) {
	rows, err := s.query(ctx, dueRelays, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: due relays: %w", err)
	}
	defer rows.Close()
	var out []*Outbound
	for rows.Next() {
		m := new(Outbound)
		if err := rows.Scan(&m.ID, &m.SenderJID, &m.Dest); err != nil {
			return nil, fmt.Errorf("store: due relays: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: due relays: %w", err)
	}
	return out, nil
}

// FallBackIDs moves the relayed messages ids to the SMS queue and returns
// those it moved. The move is one update per message guarded by its state,
// so a message falls back at most once (another instance, or a receipt
// that won the race, leaves it out).
func (s *Store) FallBackIDs(ctx context.Context, ids []int64, now time.Time) ([]*Outbound, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []*Outbound
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.fallBack(ctx, tx, ids, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: fall back: %w", err)
	}
	return out, nil
}

// FailRelay ends message id, relayed over XMPP (relayed or sent), as
// failed with reason and the XMPP stanza error condition condition (""
// the default, see Notice.ErrorCondition): instead of falling back to SMS,
// or when it could not be handed on. It raises a notice to its sender for
// any instance to claim, and reports false when the message is not relayed
// or sent.
func (s *Store) FailRelay(ctx context.Context, id int64, reason, condition string) (bool, error) {
	failed, err := s.failWhere(ctx, id, reason, condition, `route = 'xmpp' AND state IN ('relayed', 'sent')`)
	if err != nil {
		return false, fmt.Errorf("store: fail relay: %w", err)
	}
	return failed, nil
}

func (s *Store) fallBack(ctx context.Context, tx *sql.Tx, ids []int64, now time.Time) ([]*Outbound, error) {
	args := idArgs([]any{now.UnixMilli()}, ids)
	rows, err := tx.QueryContext(ctx, `UPDATE messages SET state = 'queued', route = 'sms', fallback = 1, next_attempt_at = 0, updated_at = $1
		WHERE state = 'relayed' AND id IN (`+inList(2, len(ids))+`)
		RETURNING id, user_jid, user_number, peer_number, stanza_id, want_receipt, body, parts, expires_at, peer_local`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Outbound
	for rows.Next() {
		var (
			m    Outbound
			want int
			exp  int64
		)
		if err := rows.Scan(&m.ID, &m.SenderJID, &m.SenderNumber, &m.Dest, &m.StanzaID, &want, &m.Body, &m.Parts, &exp, &m.PeerLocal); err != nil {
			return nil, err
		}
		m.WantReceipt = want != 0
		if exp != 0 {
			m.ExpiresAt = time.UnixMilli(exp)
		}
		out = append(out, &m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	// Fallen back, they count from now, for everyone and for their
	// senders, as the limits checked them (counted from when they were
	// sent, they would fall outside the windows the check reads).
	if len(out) > 0 {
		if _, err := s.txExec(ctx, tx, countSMS, now.Unix(), smsCount(out)); err != nil {
			return nil, err
		}
	}
	if err := s.countUsers(ctx, tx, s.userSMS(out, now.UnixMilli())); err != nil {
		return nil, err
	}
	return out, nil
}

// Relay is an outbound message found by its conversation and stanza id.
type Relay struct {
	ID          int64
	SenderJID   string
	State       string
	WantReceipt bool
	Armed       bool   // an SMS fallback is set for it
	PeerLocal   string // the form of the recipient's number it was written to (Outbound.PeerLocal)
}

// RelayKey names a relayed message as its recipient's receipt or error
// does: its sender's number, its recipient's, and its stanza id.
type RelayKey struct{ SenderNumber, PeerNumber, StanzaID string }

// FindRelay returns the latest message from senderNumber to peerNumber
// with stanza id, or ErrNotFound.
func (s *Store) FindRelay(ctx context.Context, senderNumber, peerNumber, stanzaID string) (Relay, error) {
	k := RelayKey{senderNumber, peerNumber, stanzaID}
	found, err := s.FindRelays(ctx, []RelayKey{k})
	if err != nil {
		return Relay{}, err
	}
	r, ok := found[k]
	if !ok {
		return r, ErrNotFound
	}
	return r, nil
}

// relayColumns are the columns scanRelay reads.
const relayColumns = `id, user_jid, state, want_receipt, next_attempt_at, peer_local`

// findRelay reads the latest message from number $1 to number $2 with
// stanza id $3 relayed over XMPP (messages_relay).
const findRelay = `SELECT ` + relayColumns + ` FROM messages
	WHERE direction = 'out' AND user_number = $1 AND peer_number = $2 AND stanza_id = $3 AND peer_jid <> ''
	ORDER BY id DESC LIMIT 1`

// findRelaysPG is findRelay for keys $1[k], $2[k], $3[k], each row with
// its k (from 1).
const findRelaysPG = `SELECT v.k, m.* FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS v(sender, peer, stanza, k)
	CROSS JOIN LATERAL (SELECT ` + relayColumns + ` FROM messages
		WHERE direction = 'out' AND user_number = v.sender AND peer_number = v.peer AND stanza_id = v.stanza AND peer_jid <> ''
		ORDER BY id DESC LIMIT 1) m`

// FindRelays returns the messages keys name that there are (see
// FindRelay): on PostgreSQL in one statement, on SQLite one prepared read
// each.
func (s *Store) FindRelays(ctx context.Context, keys []RelayKey) (map[RelayKey]Relay, error) {
	out := make(map[RelayKey]Relay, len(keys))
	if s.dialect == postgres && len(keys) > 1 {
		senders, peers, ids := make(pq.StringArray, len(keys)), make(pq.StringArray, len(keys)), make(pq.StringArray, len(keys))
		for i, k := range keys {
			senders[i], peers[i], ids[i] = k.SenderNumber, k.PeerNumber, k.StanzaID
		}
		rows, err := s.query(ctx, findRelaysPG, senders, peers, ids)
		if err != nil {
			return nil, fmt.Errorf("store: find relays: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k int
			r, err := scanRelay(rows, &k)
			if err != nil {
				return nil, fmt.Errorf("store: find relays: %w", err)
			}
			out[keys[k-1]] = r
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: find relays: %w", err)
		}
		return out, nil
	}
	for _, k := range keys {
		if _, ok := out[k]; ok {
			continue
		}
		r, err := scanRelay(s.queryRow(ctx, findRelay, k.SenderNumber, k.PeerNumber, k.StanzaID))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: find relay: %w", err)
		}
		out[k] = r
	}
	return out, nil
}

// scanRelay reads a row of relayColumns, after first (scanned into).
func scanRelay(row interface{ Scan(...any) error }, first ...any) (Relay, error) {
	var (
		r    Relay
		want int
		next int64
	)
	if err := row.Scan(append(first, &r.ID, &r.SenderJID, &r.State, &want, &next, &r.PeerLocal)...); err != nil {
		return r, err
	}
	r.WantReceipt = want != 0
	r.Armed = r.State == StateRelayed && next > 0
	return r, nil
}

// AckRelays records the recipients' receipts for relayed messages ids:
// relayed or sent becomes delivered. It returns those that were still
// relayed or sent (not one with a late receipt, after the SMS fallback).
// The write shares its commit with others (group commit): one per
// receipt, on SQLite, was half the gateway's CPU for relayed messages.
func (s *Store) AckRelays(ctx context.Context, ids []int64) (map[int64]bool, error) {
	fresh := make(map[int64]bool, len(ids))
	if len(ids) == 0 {
		return fresh, nil
	}
	err := s.grouped(ctx, &groupOp{lane: laneNew, fn: func(tx *sql.Tx) error {
		clear(fresh)
		in, args := s.idsIn("id", 2, ids)
		rows, err := s.txQuery(ctx, tx, `UPDATE messages SET state = 'delivered', next_attempt_at = 0, updated_at = $1
			WHERE `+in+` AND route = 'xmpp' AND state IN ('relayed', 'sent') RETURNING id`, append([]any{s.ms()}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			fresh[id] = true
		}
		return rows.Err()
	}})
	if err != nil {
		return nil, fmt.Errorf("store: ack relays: %w", err)
	}
	return fresh, nil
}

// BounceRelay records that the recipient's server sent back message id,
// relayed with no fallback (sent): it fails with reason. No notice is
// raised: the caller passes the server's error on. It reports false when
// the message is not sent (a fallback's, or already settled).
func (s *Store) BounceRelay(ctx context.Context, id int64, reason string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE messages SET state = 'failed', error = $1, next_attempt_at = 0, updated_at = $2 WHERE id = $3 AND route = 'xmpp' AND state = 'sent'`,
		reason, s.ms(), id)
	if err != nil {
		return false, fmt.Errorf("store: bounce relay: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Settings are a user's routing preferences.
type Settings struct {
	Fallback      bool          // send as SMS when XMPP delivery is not confirmed
	FallbackAfter time.Duration // how long to wait for the receipt
}

// SettingsOf returns the stored settings of the given bare JIDs that have any.
func (s *Store) SettingsOf(ctx context.Context, jids []string) (map[string]Settings, error) {
	out := make(map[string]Settings)
	if len(jids) == 0 {
		return out, nil
	}
	// Padded, so a few prepared statements serve every batch size.
	args := strArgs(nil, pad(jids))
	rows, err := s.query(ctx, `SELECT jid, fallback, fallback_after FROM user_settings WHERE jid IN (`+inList(1, len(args))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			j     string
			fb    int
			after int64
		)
		if err := rows.Scan(&j, &fb, &after); err != nil {
			return nil, err
		}
		out[j] = storedSettings(fb, after)
	}
	return out, rows.Err()
}

// storedSettings reads Settings from user_settings' columns.
func storedSettings(fallback int, after int64) Settings {
	return Settings{Fallback: fallback != 0, FallbackAfter: time.Duration(after) * time.Millisecond}
}

// SetSettings stores a user's settings.
func (s *Store) SetSettings(ctx context.Context, jid string, st Settings) error {
	_, err := s.exec(ctx, `INSERT INTO user_settings (jid, fallback, fallback_after) VALUES ($1, $2, $3)
		ON CONFLICT (jid) DO UPDATE SET fallback = excluded.fallback, fallback_after = excluded.fallback_after`,
		jid, b2i(st.Fallback), st.FallbackAfter.Milliseconds())
	if err != nil {
		return fmt.Errorf("store: set settings: %w", err)
	}
	return nil
}
