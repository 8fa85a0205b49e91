package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Answers to the XMPP server's requests that reached another instance.
//
// Several instances connected as one component (ejabberd; see the README)
// each get a share of the stanzas to it, chosen by the server with no
// regard to which connection asked: the answer to one instance's ping or
// roster get may come to another. That one hands it on here, through
// PostgreSQL's NOTIFY, to every instance listening; the one waiting for it
// takes it. On SQLite (one instance) nothing is handed on.

// answersChannel is the NOTIFY channel of handed-on answers.
const answersChannel = "switchboard_answers"

// MaxAnswer is the largest answer HandOnAnswer takes: what a NOTIFY
// payload may hold (8,000 bytes), less a margin.
const MaxAnswer = 7900

// Shared reports whether the store can hand answers on between instances
// (PostgreSQL).
func (s *Store) Shared() bool { return s.dialect == postgres }

// HandOnAnswer hands an answer (a stanza, at most MaxAnswer bytes) to the
// instances listening with ListenAnswers. On SQLite it does nothing.
func (s *Store) HandOnAnswer(ctx context.Context, stanza []byte) error {
	if s.dialect != postgres {
		return nil
	}
	if len(stanza) > MaxAnswer {
		return fmt.Errorf("store: an answer of %d bytes is too large to hand on (at most %d)", len(stanza), MaxAnswer)
	}
	if _, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, answersChannel, string(stanza)); err != nil {
		return fmt.Errorf("store: hand on answer: %w", err)
	}
	return nil
}

// ListenAnswers calls take with every answer handed on (HandOnAnswer by
// any instance, this one included) until ctx ends; ready, if not nil, is
// called each time the listener is (again) connected. Answers handed on
// while it is not are missed: their requests time out, as if the server
// had not answered. On SQLite it waits for ctx and returns nil.
func (s *Store) ListenAnswers(ctx context.Context, take func([]byte), ready func()) error {
	if s.dialect != postgres {
		<-ctx.Done()
		return nil
	}
	l := pq.NewListener(s.dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if (ev == pq.ListenerEventConnected || ev == pq.ListenerEventReconnected) && ready != nil {
			ready()
		}
	})
	defer l.Close()
	if err := l.Listen(answersChannel); err != nil {
		return fmt.Errorf("store: listen for answers: %w", scrub(err, s.dsn))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-l.Notify:
			if n != nil { // nil: the connection was lost and made again
				take([]byte(n.Extra))
			}
		case <-time.After(90 * time.Second):
			_ = l.Ping() // finds a dead connection while nothing comes (the listener reconnects)
		}
	}
}
