package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FragmentKey names one concatenated message from a phone.
type FragmentKey struct {
	Source, Dest string
	Ref, Total   int
}

// Fragment is one part of a concatenated message from a phone, kept until
// all parts are in (or the reassembly time runs out).
type Fragment struct {
	FragmentKey
	Seq        int
	DataCoding byte
	Payload    []byte
	ReceivedAt time.Time
	// SourceTON, SourceNPI and SMSC are as in Inbound, for the message
	// the parts make.
	SourceTON, SourceNPI byte
	SMSC                 string
	// Session names the SMPP bind that carried it, Ended tells which
	// binds are down (see Inbound.Session), and Text is the part decoded on
	// its own: with all three, a part found in a message from the same
	// phone reassembled with the same reference and count is known for a
	// resend (see AddFragment). None is stored.
	Session, Text string
	Ended         func(session string) bool
}

// fragKey is how messages.frag_key names the parts a message was
// reassembled from.
func (k FragmentKey) fragKey() string { return strconv.Itoa(k.Ref) + "/" + strconv.Itoa(k.Total) }

// AddFragment stores a part durably and returns every stored part of its
// message, ordered by sequence, so the caller can tell whether it is complete.
// A repeated part (the SMSC retrying) replaces the stored copy. A part of
// a message already reassembled and stored within resendWindow, from
// another bind now down, whose text is in that message's, is stored
// nowhere: it returns ErrResent (the SMSC sent it again after a new bind,
// never having got its response). A new message that reuses the reference
// has other text, and is stored.
func (s *Store) AddFragment(ctx context.Context, f Fragment) ([]Fragment, error) {
	var out []Fragment
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if f.Session != "" && f.Text != "" && f.Ended != nil {
			contains := `instr(body, $6) > 0`
			if s.dialect == postgres {
				contains = `strpos(body, $6) > 0`
			}
			id, err := s.resent(ctx, tx, f.Ended, `frag_key = $5 AND `+contains, f.Source, f.Dest, s.ms(), f.Session, f.FragmentKey.fragKey(), f.Text)
			if err != nil {
				return err
			}
			if id != 0 {
				return ErrResent
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO fragments (source, dest, ref, total, seq, data_coding, payload, received_at, source_ton, source_npi, smsc)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (source, dest, ref, total, seq) DO UPDATE SET data_coding = excluded.data_coding, payload = excluded.payload,
				source_ton = excluded.source_ton, source_npi = excluded.source_npi, smsc = excluded.smsc`,
			f.Source, f.Dest, f.Ref, f.Total, f.Seq, int(f.DataCoding), f.Payload, s.ms(), int(f.SourceTON), int(f.SourceNPI), f.SMSC); err != nil {
			return err
		}
		var err error
		out, err = fragments(ctx, tx, `WHERE source = $1 AND dest = $2 AND ref = $3 AND total = $4 ORDER BY seq`,
			f.Source, f.Dest, f.Ref, f.Total)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: add fragment: %w", err)
	}
	return out, nil
}

// Reassembled reports whether every one of texts (parts of a message from
// k's phone to k's number, each decoded alone) is in a message reassembled
// from parts with k's reference and count within resendWindow: parts
// sent again once their message was complete, which would otherwise be
// delivered as a second, incomplete message.
func (s *Store) Reassembled(ctx context.Context, k FragmentKey, texts []string) (bool, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT body FROM messages WHERE direction = 'in' AND peer_number = $1 AND user_number = $2
		AND created_at >= $3 AND frag_key = $4 ORDER BY id DESC LIMIT 16`,
		k.Source, k.Dest, s.ms()-resendWindow.Milliseconds(), k.fragKey())
	if err != nil {
		return false, fmt.Errorf("store: reassembled: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return false, fmt.Errorf("store: reassembled: %w", err)
		}
		all := len(texts) > 0
		for _, t := range texts {
			all = all && t != "" && strings.Contains(body, t)
		}
		if all {
			return true, nil
		}
	}
	return false, rows.Err()
}

// StaleFragments returns the stored parts of messages whose first part came
// before cutoff, grouped by message: they will not be completed, or were
// completed just before a crash, and are to be delivered as they are.
func (s *Store) StaleFragments(ctx context.Context, cutoff time.Time) ([][]Fragment, error) {
	var all []Fragment
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		all, err = fragments(ctx, tx, `f WHERE EXISTS (SELECT 1 FROM fragments o WHERE o.source = f.source AND o.dest = f.dest
			AND o.ref = f.ref AND o.total = f.total AND o.received_at < $1) ORDER BY source, dest, ref, total, seq`, cutoff.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: stale fragments: %w", err)
	}
	var groups [][]Fragment
	for i, f := range all {
		if i == 0 || f.FragmentKey != all[i-1].FragmentKey {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], f)
	}
	return groups, nil
}

func fragments(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]Fragment, error) {
	rows, err := tx.QueryContext(ctx, `SELECT source, dest, ref, total, seq, data_coding, payload, received_at, source_ton, source_npi, smsc
		FROM fragments `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Fragment
	for rows.Next() {
		var (
			f            Fragment
			dc, ton, npi int
			at           int64
		)
		if err := rows.Scan(&f.Source, &f.Dest, &f.Ref, &f.Total, &f.Seq, &dc, &f.Payload, &at, &ton, &npi, &f.SMSC); err != nil {
			return nil, err
		}
		f.DataCoding, f.SourceTON, f.SourceNPI = byte(dc), byte(ton), byte(npi)
		f.ReceivedAt = time.UnixMilli(at)
		out = append(out, f)
	}
	return out, rows.Err()
}

// deleteFragments deletes the stored parts of one message from a phone.
const deleteFragments = `DELETE FROM fragments WHERE source = $1 AND dest = $2 AND ref = $3 AND total = $4`

// DropFragments deletes the stored parts of one message from a phone: for
// a number nobody has any more, there is no one to deliver them to.
func (s *Store) DropFragments(ctx context.Context, k FragmentKey) error {
	_, err := s.exec(ctx, deleteFragments, k.Source, k.Dest, k.Ref, k.Total)
	if err != nil {
		return fmt.Errorf("store: drop fragments: %w", err)
	}
	return nil
}
