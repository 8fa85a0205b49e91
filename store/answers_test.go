package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"switchboard/store"
)

// TestHandOnAnswers: on PostgreSQL an answer handed on reaches every
// listener, this instance's too, whole; one too large for a NOTIFY is
// refused. On SQLite (one instance) nothing is handed on, and listening
// waits for the end.
func TestHandOnAnswers(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		answer := `<iq type="result" id="a1" from="alice@example.com"><query xmlns="jabber:iq:roster"><item name="Zoë &amp; co"/></query></iq>`
		if !s.Shared() {
			if err := s.HandOnAnswer(ctx, []byte(answer)); err != nil {
				t.Fatal(err)
			}
			lctx, lcancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer lcancel()
			if err := s.ListenAnswers(lctx, func([]byte) { t.Error("an answer on SQLite") }, nil); err != nil {
				t.Fatal(err)
			}
			return
		}
		got := make(chan string, 4)
		ready := make(chan struct{}, 4)
		lctx, lcancel := context.WithCancel(ctx)
		done := make(chan error, 2)
		for range 2 {
			go func() {
				done <- s.ListenAnswers(lctx, func(b []byte) { got <- string(b) }, func() { ready <- struct{}{} })
			}()
		}
		<-ready
		<-ready
		if err := s.HandOnAnswer(ctx, []byte(answer)); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			select {
			case b := <-got:
				if b != answer {
					t.Errorf("listener got %q, want %q", b, answer)
				}
			case <-ctx.Done():
				t.Fatal("a listener got nothing")
			}
		}
		if err := s.HandOnAnswer(ctx, []byte(strings.Repeat("x", store.MaxAnswer+1))); err == nil {
			t.Error("an answer over MaxAnswer was handed on")
		}
		lcancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	})
}
