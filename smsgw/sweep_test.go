package smsgw

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"switchboard/internal/testenv"
	"switchboard/store/storetest"
)

// TestSweepQuietOnStop: a sweep that the gateway's stopping interrupts
// logs no error (operators alert on those, and a restart is no fault);
// one that fails while the gateway runs does.
func TestSweepQuietOnStop(t *testing.T) {
	msgs := []string{
		"reading stale fragments failed",
		"sweeping the store failed; the next sweep will retry",
		"ending waits for receipts failed; the next sweep will retry",
	}
	sweep := func(ctx context.Context, closed bool) *testenv.Logs {
		logs := testenv.NewLogs(t)
		st := storetest.SQLite(t)
		if closed {
			st.Close()
		}
		g := New(Config{Instance: "i1", Logger: zerolog.New(logs)}, st, nil)
		g.sweepFragments(ctx)
		g.sweepStore(ctx)
		return logs
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	logs := sweep(stopped, false)
	for _, m := range msgs {
		if n := logs.Count(m); n != 0 {
			t.Errorf("stopping: %q logged %d times", m, n)
		}
	}
	logs = sweep(context.Background(), true)
	for _, m := range msgs {
		if n := logs.Count(m); n != 1 {
			t.Errorf("store closed while running: %q logged %d times, want 1", m, n)
		}
	}
}
