package store

import (
	"context"
	"fmt"
)

// QueueStates are the states of messages still on their way, which
// QueueDepths counts: outbound queued, submitting, submitted and relayed,
// inbound received.
var QueueStates = []string{StateQueued, StateSubmitting, StateSubmitted, StateRelayed, StateReceived}

// QueueDepths counts the messages in each of QueueStates. Every state is
// in the map, zero when no message is in it.
func (s *Store) QueueDepths(ctx context.Context) (map[string]int, error) {
	args := strArgs(nil, QueueStates)
	rows, err := s.db.QueryContext(ctx, `SELECT state, count(*) FROM messages
		WHERE `+inWork+` AND state IN (`+inList(1, len(QueueStates))+`) GROUP BY state`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: queue depths: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int, len(QueueStates))
	for _, st := range QueueStates {
		out[st] = 0
	}
	for rows.Next() {
		var (
			st string
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: queue depths: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: queue depths: %w", err)
	}
	return out, nil
}
