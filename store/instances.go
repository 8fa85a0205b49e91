package store

import (
	"context"
	"fmt"
	"time"
)

// Instance is a running instance connected to the XMPP server.
type Instance struct {
	Name string
	Seen time.Time // when it last said so
}

// InstanceSeen records that instance name is connected to the XMPP server
// now. A running instance says so every few seconds (a heartbeat), and
// InstanceGone when its connection ends.
func (s *Store) InstanceSeen(ctx context.Context, name string) error {
	_, err := s.exec(ctx, `INSERT INTO instances (name, seen_at) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at`, name, s.ms())
	if err != nil {
		return fmt.Errorf("store: instance seen: %w", err)
	}
	return nil
}

// InstanceGone records that instance name is no longer connected.
func (s *Store) InstanceGone(ctx context.Context, name string) error {
	if _, err := s.exec(ctx, `DELETE FROM instances WHERE name = $1`, name); err != nil {
		return fmt.Errorf("store: instance gone: %w", err)
	}
	return nil
}

// ConnectedInstances returns the instances seen connected since since,
// the most recently seen first. (Sweep deletes those that died without
// saying so.)
func (s *Store) ConnectedInstances(ctx context.Context, since time.Time) ([]Instance, error) {
	rows, err := s.query(ctx, `SELECT name, seen_at FROM instances WHERE seen_at >= $1 ORDER BY seen_at DESC`, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store: connected instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		var (
			in Instance
			at int64
		)
		if err := rows.Scan(&in.Name, &at); err != nil {
			return nil, fmt.Errorf("store: connected instances: %w", err)
		}
		in.Seen = time.UnixMilli(at)
		out = append(out, in)
	}
	return out, rows.Err()
}
