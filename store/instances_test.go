package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"switchboard/store"
)

// TestInstances: instances say they are connected, are listed the most
// recently seen first, and leave the list when they say they are gone or
// were last seen too long ago.
func TestInstances(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.UnixMilli(1_800_000_000_000)
		store.SetClock(s, func() time.Time { return now })
		names := func(since time.Time) []string {
			t.Helper()
			in, err := s.ConnectedInstances(ctx, since)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, i := range in {
				out = append(out, i.Name)
			}
			return out
		}
		for _, n := range []string{"a", "b", "c"} {
			if err := s.InstanceSeen(ctx, n); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Second)
		}
		if err := s.InstanceSeen(ctx, "a"); err != nil { // a heartbeat
			t.Fatal(err)
		}
		if got, want := names(now.Add(-time.Minute)), []string{"a", "c", "b"}; !slices.Equal(got, want) {
			t.Errorf("connected: %v, want %v", got, want)
		}
		if err := s.InstanceGone(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		// b was last seen 2 s before now: too long ago.
		if got, want := names(now.Add(-1500*time.Millisecond)), []string{"a"}; !slices.Equal(got, want) {
			t.Errorf("after c left and b fell silent: %v, want %v", got, want)
		}
		// b is still there, silent; the sweep deletes it an hour on.
		if got, want := names(now.Add(-time.Minute)), []string{"a", "b"}; !slices.Equal(got, want) {
			t.Errorf("before the sweep: %v, want %v", got, want)
		}
		now = now.Add(time.Hour - 1500*time.Millisecond)
		if _, err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := names(now.Add(-2*time.Hour)), []string{"a"}; !slices.Equal(got, want) {
			t.Errorf("after the sweep: %v, want %v (b seen an hour and 0.5 s ago)", got, want)
		}
	})
}
