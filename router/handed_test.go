package router

import (
	"testing"
	"time"

	"switchboard/store"
)

// TestHandedBound checks that handed notices waiting in memory stay within
// handedMax, and that expired ones are dropped, not sent.
func TestHandedBound(t *testing.T) {
	r := New(Config{}, nil)
	many := make([]store.Notice, handedMax+10)
	for i := range many {
		many[i].ID = int64(i + 1)
	}
	r.HandNotices(many)
	if n := len(r.handed); n != handedMax {
		t.Fatalf("%d handed notices kept, want %d", n, handedMax)
	}
	// All expired: none is taken, and the next hand-over drops them.
	for i := range r.handed {
		r.handed[i].deadline = time.Now().Add(-time.Second)
	}
	r.HandNotices([]store.Notice{{ID: 1 << 40}})
	got := r.takeHanded(noticeBatch)
	if len(got) != 1 || got[0].ID != 1<<40 {
		t.Fatalf("took %d notices (first %+v), want only the fresh one", len(got), got[0])
	}
	if len(r.handed) != 0 {
		t.Fatalf("%d handed notices left", len(r.handed))
	}
}
