package router_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"switchboard/router"
	"switchboard/store/storetest"
)

// TestUnmatchedReceiptsAtShutdown: receipts Receipt took just before the
// router stops, matching no relayed message, are still routed (as any
// stanza, to the number's owner). They go through the intake once the
// acknowledgements are matched, so the intake must outlive that.
func TestUnmatchedReceiptsAtShutdown(t *testing.T) {
	const n, rounds = 60, 10
	lost := 0
	for range rounds {
		st := storetest.SQLite(t)
		for num, j := range map[string]string{aliceNum: "alice@example.com", bobNum: "bob@example.com"} {
			if _, err := st.Bind(context.Background(), num, j, "operator"); err != nil {
				t.Fatal(err)
			}
		}
		x := newFakeXMPP()
		x.notify = make(chan struct{}, 10*n)
		r := router.New(router.Config{Component: comp, Domains: []string{"example.com"}, DefaultRegion: "US", Instance: "test",
			Logger: zerolog.Nop(), WakeSMS: func() {}}, st)
		r.SetXMPP(x)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		for i := range n {
			id := fmt.Sprint("unknown-", i)
			if !r.Receipt(context.Background(), receipt(bob, aliceNum, id), id, true) {
				t.Fatal("Receipt did not take the receipt")
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		x.mu.Lock()
		relayed := 0
		for _, s := range x.out {
			if s.kind == "relay" {
				relayed++
			}
		}
		x.mu.Unlock()
		lost += n - relayed
	}
	if lost > 0 {
		t.Errorf("%d of %d receipts taken by Receipt were never routed", lost, n*rounds)
	}
}
