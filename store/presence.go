package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PresenceChange is a user's resource becoming available or unavailable,
// at the time the gateway read it. An unavailable change with no Resource
// is for every resource of the user.
type PresenceChange struct {
	JID       string // bare
	Resource  string
	Available bool
	At        time.Time
}

// SetPresences records changes, in order, in one transaction. A change
// older than what is recorded for its resource is ignored.
func (s *Store) SetPresences(ctx context.Context, changes []PresenceChange) error {
	if len(changes) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, c := range changes {
			at, avail := c.At.UnixMilli(), 0
			if c.Available {
				avail = 1
			}
			var err error
			if c.Resource == "" && !c.Available {
				_, err = s.txExec(ctx, tx, `UPDATE presences SET available = 0, at = $1 WHERE jid = $2 AND at <= $1`, at, c.JID)
			} else {
				_, err = s.txExec(ctx, tx, `INSERT INTO presences (jid, resource, available, at) VALUES ($1, $2, $3, $4)
					ON CONFLICT (jid, resource) DO UPDATE SET available = excluded.available, at = excluded.at
					WHERE presences.at <= excluded.at`,
					c.JID, c.Resource, avail, at)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: presence: %w", err)
	}
	return nil
}

// EndPresencesBefore records as gone every resource recorded available by
// a change read before before (the XMPP server restarted then: every
// session on it ended, and a server need not say so), and returns how
// many. A change read since is kept.
func (s *Store) EndPresencesBefore(ctx context.Context, before time.Time) (int64, error) {
	at := before.UnixMilli()
	res, err := s.exec(ctx, `UPDATE presences SET available = 0, at = $1 WHERE available = 1 AND at < $1`, at)
	if err != nil {
		return 0, fmt.Errorf("store: presence: %w", err)
	}
	return res.RowsAffected()
}

// UserAvailable reports whether resource of the bare JID is available, or,
// when resource is "", any of its resources.
func (s *Store) UserAvailable(ctx context.Context, bare, resource string) (bool, error) {
	var (
		one int
		err error
	)
	if resource == "" {
		err = s.queryRow(ctx, `SELECT 1 FROM presences WHERE jid = $1 AND available = 1 LIMIT 1`, bare).Scan(&one)
	} else {
		err = s.queryRow(ctx, `SELECT 1 FROM presences WHERE jid = $1 AND resource = $2 AND available = 1`, bare, resource).Scan(&one)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: presence: %w", err)
	}
	return true, nil
}

// Grant is what an XMPP server domain advertised to the component under
// XEP-0356 (permission types such as "both", "roster", or "none"), and when
// an instance read it.
type Grant struct {
	NS, Roster, Message, Presence string
	At                            time.Time
}

// SetGrant records domain's advertisement, unless a later one is recorded.
func (s *Store) SetGrant(ctx context.Context, domain string, g Grant) error {
	_, err := s.exec(ctx, `INSERT INTO grants (domain, ns, roster, message, presence, at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (domain) DO UPDATE SET ns = excluded.ns, roster = excluded.roster, message = excluded.message,
			presence = excluded.presence, at = excluded.at
		WHERE grants.at <= excluded.at`,
		domain, g.NS, g.Roster, g.Message, g.Presence, g.At.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: grant: %w", err)
	}
	return nil
}

// GrantOf returns the latest advertisement recorded for domain; ok is false
// when there is none.
func (s *Store) GrantOf(ctx context.Context, domain string) (g Grant, ok bool, err error) {
	var at int64
	err = s.queryRow(ctx, `SELECT ns, roster, message, presence, at FROM grants WHERE domain = $1`, domain).
		Scan(&g.NS, &g.Roster, &g.Message, &g.Presence, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Grant{}, false, nil
	case err != nil:
		return Grant{}, false, fmt.Errorf("store: grant: %w", err)
	}
	g.At = time.UnixMilli(at)
	return g, true, nil
}
