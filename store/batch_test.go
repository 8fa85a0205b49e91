package store_test

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/store"
)

// TestConcurrentPartsAndReceipts records SMSC ids and applies receipts for
// many messages at once, each receipt racing its part's submit_sm_resp, so
// the group loop applies them in shared batches in both orders. Every
// message must reach its one right final state exactly once, and raise the
// notices its sender asked for.
func TestConcurrentPartsAndReceipts(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 240
		msgs := make([]*store.Outbound, n)
		for i := range msgs {
			msgs[i] = &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550199",
				StanzaID: fmt.Sprintf("s%d", i), WantReceipt: i%2 == 0, Body: "hello", Parts: 1 + i%3}
		}
		if err := s.AcceptOutbound(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClaimOutbound(ctx, "a", 2*n, time.Minute)
		if err != nil || len(got) != n {
			t.Fatalf("ClaimOutbound = %d, %v", len(got), err)
		}
		byID := make(map[int64]*store.Outbound, n)
		for _, m := range msgs {
			byID[m.ID] = m
		}
		for _, c := range got {
			// The ids given back by AcceptOutbound are those of the rows.
			if m := byID[c.ID]; m == nil || m.StanzaID != c.StanzaID || m.Parts != c.Parts {
				t.Fatalf("claimed id %d is stanza %q with %d parts; accepted as %+v", c.ID, c.StanzaID, c.Parts, m)
			}
		}
		fails := func(i int) bool { return i%5 == 0 } // its last part is UNDELIV
		var (
			finals atomic.Int64
			wg     sync.WaitGroup
			mu     sync.Mutex
			states = make(map[int64][]string) // final states reported per message
		)
		report := func(id int64, state string) {
			finals.Add(1)
			mu.Lock()
			states[id] = append(states[id], state)
			mu.Unlock()
		}
		for i, m := range msgs {
			for seq := 1; seq <= m.Parts; seq++ {
				id := fmt.Sprintf("%x", i*10+seq)
				stat := "DELIVRD"
				if fails(i) && seq == m.Parts {
					stat = "UNDELIV"
				}
				// Every fourth message's receipts name the id in a form
				// more than its submit_sm_resp did (the two share the
				// form they match by, as with an SMSC whose receipts give
				// ids another way): on PostgreSQL, past the first outcome
				// lane, the two are sent by their least forms ("0…" and
				// the id) to lanes that may differ (outcomeLane), and must
				// still meet. The receipt's own form comes first, as
				// dlr.IDForms gives it and the store takes it: an early
				// receipt is kept under it, and the part looks for it
				// among its forms. (Put first, "0…" — a form IDForms never
				// gives first — made the part miss a receipt that came
				// before it twice, one run in about thirty under -race.)
				partForms, rcptForms := []string{id}, []string{id}
				if i%4 == 1 {
					rcptForms = []string{id, "0" + id}
				}
				wg.Add(2)
				go func() {
					defer wg.Done()
					final, err := s.PartSubmitted(ctx, m.ID, seq, "", partForms)
					if err != nil {
						t.Errorf("PartSubmitted(%d, %d) = %v", m.ID, seq, err)
					}
					if final {
						st, _, _ := s.MessageState(ctx, m.ID)
						report(m.ID, st)
					}
				}()
				go func() {
					defer wg.Done()
					repeats := 1 + i%2 // every other message's receipts come twice
					for range repeats {
						res, err := s.Receipt(ctx, "", rcptForms, stat, "")
						if err != nil {
							t.Errorf("Receipt(%s) = %v", id, err)
							return
						}
						if res.Final {
							if res.Message != m.ID {
								t.Errorf("receipt %s settled message %d, want %d", id, res.Message, m.ID)
							}
							report(res.Message, res.State)
						}
					}
				}()
			}
		}
		wg.Wait()
		if got := finals.Load(); got != n {
			t.Errorf("%d final outcomes reported, want %d (one per message)", got, n)
		}
		wantNotices := 0
		for i, m := range msgs {
			want := store.StateDelivered
			if fails(i) {
				want = store.StateFailed
			}
			if want == store.StateFailed || m.WantReceipt {
				wantNotices++
			}
			st, _, err := s.MessageState(ctx, m.ID)
			if err != nil || st != want {
				t.Errorf("message %d (%d parts): state %q, %v; want %q", i, m.Parts, st, err, want)
			}
			if got := states[m.ID]; len(got) != 1 || got[0] != want {
				t.Errorf("message %d: final outcomes reported %v, want [%s]", i, got, want)
			}
		}
		ns, err := s.ClaimNotices(ctx, "t", 2*n, time.Minute)
		if err != nil || len(ns) != wantNotices {
			t.Errorf("ClaimNotices = %d notices, %v; want %d", len(ns), err, wantNotices)
		}
		s.Close()
		if g := store.LargestGroup(s); g < 2 {
			t.Errorf("the largest group commit held %d writes: nothing was batched", g)
		}
		// On PostgreSQL the burst must have reached the second outcome
		// lane, or this test says nothing of two lanes meeting.
		if store.IsPostgres(s) && store.Spilled(s) == 0 {
			t.Errorf("no SMSC id or receipt went past the first outcome lane")
		}
	})
}

// TestHandNotices checks that notices raised by receipts go to the sink
// after their commit, leased (no claim takes them while the lease holds),
// and that a claim takes them once the lease ran out (the instance died).
func TestHandNotices(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.Now()
		store.SetClock(s, func() time.Time { return at })
		got := make(chan []store.Notice, 10)
		s.HandNotices("i1", time.Minute, func(ns []store.Notice) { got <- ns })
		ok, bad := accept(t, s, 1), accept(t, s, 1)
		if _, err := s.ClaimOutbound(ctx, "i1", 10, time.Minute); err != nil {
			t.Fatal(err)
		}
		for i, m := range []*store.Outbound{ok, bad} {
			id := fmt.Sprintf("n%d", i)
			if _, err := s.PartSubmitted(ctx, m.ID, 1, "", []string{id}); err != nil {
				t.Fatal(err)
			}
			stat := "DELIVRD"
			if m == bad {
				stat = "UNDELIV"
			}
			// Handed: nothing waits to be claimed.
			if r, err := s.Receipt(ctx, "", []string{id}, stat, "012"); err != nil || !r.Final || r.Unclaimed {
				t.Fatalf("Receipt = %+v, %v", r, err)
			}
		}
		var ns []store.Notice
		for len(ns) < 2 {
			select {
			case n := <-got:
				ns = append(ns, n...)
			case <-time.After(5 * time.Second):
				t.Fatalf("notices handed: %+v", ns)
			}
		}
		if ns[0].ID != ok.ID || ns[0].State != store.StateDelivered || ns[0].StanzaID != "m1" || ns[0].UserJID != ok.SenderJID || !ns[0].WantReceipt ||
			ns[1].ID != bad.ID || ns[1].State != store.StateFailed || !strings.Contains(ns[1].Error, "UNDELIV") || ns[1].PeerNumber != bad.Dest {
			t.Fatalf("handed %+v", ns)
		}
		if c, err := s.ClaimNotices(ctx, "i2", 10, time.Minute); err != nil || len(c) != 0 {
			t.Fatalf("claimed %+v, %v while the lease holds", c, err)
		}
		// The instance died before sending: after the lease, a claim takes both.
		at = at.Add(2 * time.Minute)
		c, err := s.ClaimNotices(ctx, "i2", 10, time.Minute)
		if err != nil || len(c) != 2 {
			t.Fatalf("claimed %+v, %v after the lease", c, err)
		}
		if err := s.NoticesDone(ctx, []int64{c[0].ID, c[1].ID}); err != nil {
			t.Fatal(err)
		}
		at = at.Add(2 * time.Minute)
		if c, err := s.ClaimNotices(ctx, "i3", 10, time.Minute); err != nil || len(c) != 0 {
			t.Fatalf("claimed %+v, %v after done", c, err)
		}
	})
}

// A message from a phone is handed to the sink once committed, leased, and
// claimed by another instance only after the lease ran out.
func TestHandInbound(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.Now()
		store.SetClock(s, func() time.Time { return at })
		got := make(chan []store.Notice, 10)
		s.HandNotices("i1", time.Minute, func(ns []store.Notice) { got <- ns })
		in := &store.Inbound{Source: "+12015550999", Dest: "+12015550100", RecipientJID: "alice@example.com", Body: "hi"}
		if err := s.AcceptInbound(ctx, in); err != nil || !in.Handed {
			t.Fatalf("AcceptInbound: handed %v, %v", in.Handed, err)
		}
		var ns []store.Notice
		select {
		case ns = <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("no notice handed")
		}
		want := store.Notice{ID: in.ID, Direction: store.In, Route: store.RouteSMS, State: store.StateReceived, UserJID: in.RecipientJID,
			UserNumber: in.Dest, PeerNumber: in.Source, Body: "hi", Stored: time.UnixMilli(at.UnixMilli())}
		if len(ns) != 1 || ns[0] != want {
			t.Fatalf("handed %+v, want %+v", ns, want)
		}
		if c, err := s.ClaimNotices(ctx, "i2", 10, time.Minute); err != nil || len(c) != 0 {
			t.Fatalf("claimed %+v, %v while the lease holds", c, err)
		}
		at = at.Add(2 * time.Minute)
		c, err := s.ClaimNotices(ctx, "i2", 10, time.Minute)
		if err != nil || len(c) != 1 || c[0] != want {
			t.Fatalf("claimed %+v, %v after the lease; want %+v", c, err, want)
		}
	})
}

// Notices done are lazy: alone, they wait for another write to share its
// commit (here with the wait made long, so the test does not depend on
// timing), and they commit on their own once the wait is over. On
// PostgreSQL they have a lane of their own, so only the second half holds.
func TestLazyNoticesDone(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ns := make(chan []store.Notice, 10)
		s.HandNotices("i1", time.Minute, func(n []store.Notice) { ns <- n })
		accept := func(body string) *store.Inbound {
			in := &store.Inbound{Source: "+12015550999", Dest: "+12015550100", RecipientJID: "alice@example.com", Body: body}
			if err := s.AcceptInbound(ctx, in); err != nil {
				t.Fatal(err)
			}
			<-ns
			return in
		}
		received := func(want int) {
			t.Helper()
			depths, err := s.QueueDepths(ctx)
			if err != nil || depths[store.StateReceived] != want {
				t.Errorf("received messages: %v, %v; want %d", depths, err, want)
			}
		}
		if !store.IsPostgres(s) {
			store.SetLazyWait(s, time.Hour)
			in := accept("hi")
			c0 := store.GroupCommits(s)
			done := make(chan error, 1)
			go func() { done <- s.NoticesDone(ctx, []int64{in.ID}) }()
			select {
			case err := <-done:
				t.Fatalf("NoticesDone returned (%v) with nothing to share a commit with, before its wait", err)
			case <-time.After(100 * time.Millisecond):
			}
			accept("again")
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := store.GroupCommits(s) - c0; got != 1 {
				t.Errorf("%d commits for a lazy write and a new message, want 1", got)
			}
			received(1) // the first one delivered
		}

		if store.IsPostgres(s) {
			// Notices done wait for each other, in a lane of their own, and
			// go as one statement.
			store.SetLazyWait(s, 200*time.Millisecond)
			ins := []*store.Inbound{accept("one"), accept("two"), accept("three")}
			depths, _ := s.QueueDepths(ctx)
			before := depths[store.StateReceived]
			c0 := store.GroupCommits(s)
			var wg sync.WaitGroup
			for _, in := range ins {
				wg.Go(func() {
					if err := s.NoticesDone(ctx, []int64{in.ID}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got := store.GroupCommits(s) - c0; got != 1 {
				t.Errorf("%d commits for three notices done at once, want 1", got)
			}
			received(before - 3)
		}

		// With nothing else to write, it commits after the wait.
		store.SetLazyWait(s, 10*time.Millisecond)
		in := accept("more")
		depths, _ := s.QueueDepths(ctx)
		before := depths[store.StateReceived]
		if err := s.NoticesDone(ctx, []int64{in.ID}); err != nil {
			t.Fatal(err)
		}
		received(before - 1)
	})
}

// A message from a phone without a recipient given is stored for the
// number's owner, looked up in the insert's transaction; one for a number
// nobody has is refused with ErrNotFound, hands no notice, and does not
// fail the messages committing beside it.
func TestInboundFindsOwner(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		got := make(chan []store.Notice, 100)
		s.HandNotices("i1", time.Minute, func(ns []store.Notice) { got <- ns })
		if _, err := s.Bind(ctx, "+12015550100", "alice@example.com", "sms"); err != nil {
			t.Fatal(err)
		}
		// Concurrent, so some share a transaction.
		const n = 40
		ins := make([]*store.Inbound, n)
		errs := make(chan error, n)
		for i := range ins {
			dest := "+12015550100"
			if i%2 == 1 {
				dest = "+12015550177" // nobody's
			}
			ins[i] = &store.Inbound{Source: "+12015550999", Dest: dest, Body: fmt.Sprint("m", i)}
			go func(in *store.Inbound) { errs <- s.AcceptInbound(ctx, in) }(ins[i])
		}
		for range ins {
			<-errs
		}
		handed := make(map[int64]store.Notice)
		for len(handed) < n/2 {
			select {
			case ns := <-got:
				for _, x := range ns {
					handed[x.ID] = x
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("handed %d notices, want %d", len(handed), n/2)
			}
		}
		for i, in := range ins {
			if i%2 == 1 {
				if in.ID != 0 || in.Handed || in.RecipientJID != "" {
					t.Errorf("message %d to nobody's number: stored as %d, handed %v, recipient %q", i, in.ID, in.Handed, in.RecipientJID)
				}
				continue
			}
			if in.ID == 0 || !in.Handed || in.RecipientJID != "alice@example.com" {
				t.Errorf("message %d: stored as %d, handed %v, recipient %q", i, in.ID, in.Handed, in.RecipientJID)
			}
			if x := handed[in.ID]; x.UserJID != "alice@example.com" || x.Body != in.Body {
				t.Errorf("message %d: handed %+v", i, x)
			}
		}
		if len(handed) != n/2 {
			t.Errorf("handed %d notices, want %d", len(handed), n/2)
		}
		err := s.AcceptInbound(ctx, &store.Inbound{Source: "+12015550999", Dest: "+12015550177", Body: "x"})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AcceptInbound to nobody's number: %v, want ErrNotFound", err)
		}
		depths, err := s.QueueDepths(ctx)
		if err != nil || depths[store.StateReceived] != n/2 {
			t.Errorf("received messages stored: %v, %v; want %d", depths, err, n/2)
		}
	})
}

// On PostgreSQL, new messages and notices done commit in lanes of their
// own: an outcome held up (here by a row lock taken from outside) does not
// hold up accepting messages or recording notices sent.
func TestLanes(t *testing.T) {
	dsn := testenv.StartPostgres(t)
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := accept(t, s, 1)
	claimOne(t, s, "i1")
	if _, err := s.PartSubmitted(ctx, m.ID, 1, "", []string{"L1"}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `SELECT id FROM messages WHERE id = $1 FOR UPDATE`, m.ID); err != nil {
		t.Fatal(err)
	}
	receipt := make(chan error, 1)
	go func() {
		_, err := s.Receipt(ctx, "", []string{"L1"}, "DELIVRD", "000")
		receipt <- err
	}()
	// The receipt waits for the lock; meanwhile the other lanes commit.
	others := make(chan error, 1)
	go func() {
		n := &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550198",
			StanzaID: "m2", Body: "second", Parts: 1}
		if err := s.AcceptOutbound(ctx, []*store.Outbound{n}); err != nil {
			others <- fmt.Errorf("accept: %w", err)
			return
		}
		others <- s.NoticesDone(ctx, []int64{n.ID})
	}()
	select {
	case err := <-others:
		if err != nil {
			t.Fatalf("while an outcome waits: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("accepting and notices done waited for the outcome held up")
	}
	select {
	case err := <-receipt:
		t.Fatalf("the receipt went through the lock: %v", err)
	default:
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-receipt; err != nil {
		t.Fatal(err)
	}
	if st, _, err := s.MessageState(ctx, m.ID); err != nil || st != store.StateDelivered {
		t.Fatalf("after the lock: state %q, %v", st, err)
	}
}

// TestInstancesSettleTogether has two instances sharing PostgreSQL apply,
// at the same moment, the receipts of the two parts of each message, one
// part each (an SMSC sends receipts on whichever bind it likes). Neither
// transaction sees the other's part, uncommitted; each message must still
// end delivered, and be reported final exactly once.
func TestInstancesSettleTogether(t *testing.T) {
	dsn := testenv.StartPostgres(t)
	ctx := context.Background()
	var stores [2]*store.Store
	for i := range stores {
		s, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	const n = 120
	msgs := make([]*store.Outbound, n)
	for i := range msgs {
		msgs[i] = &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550199",
			StanzaID: fmt.Sprintf("s%d", i), WantReceipt: true, Body: "hello", Parts: 2}
	}
	if err := stores[0].AcceptOutbound(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if got, err := stores[0].ClaimOutbound(ctx, "a", n, time.Minute); err != nil || len(got) != n {
		t.Fatalf("ClaimOutbound = %d, %v", len(got), err)
	}
	for i, m := range msgs {
		for seq := 1; seq <= 2; seq++ {
			if _, err := stores[0].PartSubmitted(ctx, m.ID, seq, "", []string{fmt.Sprintf("t%d-%d", i, seq)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var (
		wg     sync.WaitGroup
		finals atomic.Int64
		start  = make(chan struct{})
	)
	for i := range msgs {
		for seq := 1; seq <= 2; seq++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := stores[seq-1].Receipt(ctx, "", []string{fmt.Sprintf("t%d-%d", i, seq)}, "DELIVRD", "")
				if err != nil {
					t.Errorf("Receipt = %v", err)
				}
				if res.Final {
					finals.Add(1)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	stuck := 0
	for _, m := range msgs {
		if st, _, err := stores[1].MessageState(ctx, m.ID); err != nil || st != store.StateDelivered {
			stuck++
		}
	}
	if stuck > 0 {
		t.Errorf("%d of %d messages not delivered after the receipts of all their parts", stuck, n)
	}
	if got := finals.Load(); got != n {
		t.Errorf("%d final outcomes reported, want %d", got, n)
	}
}

// TestBatchAsSequence applies random mixes of SMSC ids and receipts
// (resubmissions, repeated and unknown receipts, receipts kept early
// before, messages of one to three parts) as one batch on one store, and
// one call at a time on another that started the same: the SMSC ids in
// arrival order, then the receipts. Both must end with the same messages,
// parts, early receipts and notices, report the same matches, and report
// each message final as often.
func TestBatchAsSequence(t *testing.T) {
	engineStores(t, func(t *testing.T, open func() *store.Store) {
		for round := range envRounds(8) {
			a, b := open(), open()
			batchAsSequence(t, round, a, b)
			a.Close() // at once: PostgreSQL's connections are few
			b.Close()
		}
	})
}

func batchAsSequence(t *testing.T, round int, batched, serial *store.Store) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(round), 9))
	at := time.UnixMilli(1_800_000_000_000)
	stores := []*store.Store{batched, serial}
	const n = 40
	parts := make([]int, n)
	for i := range parts {
		parts[i] = 1 + rng.IntN(3)
	}
	want := make([]bool, n)
	for i := range want {
		want[i] = rng.IntN(3) > 0
	}
	for _, s := range stores {
		store.SetClock(s, func() time.Time { return at })
		msgs := make([]*store.Outbound, n)
		for i := range msgs {
			msgs[i] = &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550199",
				StanzaID: fmt.Sprintf("s%d", i), WantReceipt: want[i], Body: "hello", Parts: parts[i]}
		}
		if err := s.AcceptOutbound(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ClaimOutbound(ctx, "a", n, time.Minute); err != nil || len(got) != n {
			t.Fatalf("ClaimOutbound = %d, %v", len(got), err)
		}
	}
	// Both stores numbered the messages 1…n.
	id := func(i int) int64 { return int64(i + 1) }
	forms := func(k int) []string { return []string{fmt.Sprintf("%x", k), fmt.Sprint(k)} }
	states := []string{"DELIVRD", "DELIVRD", "DELIVRD", "UNDELIV", "EXPIRED", "REJECTD"}
	receipt := func(k int) *store.Outcome {
		f := forms(k)
		if rng.IntN(2) == 0 {
			f[0], f[1] = f[1], f[0] // quoted in the other form
		}
		return &store.Outcome{Forms: f, State: states[rng.IntN(len(states))], Err: fmt.Sprintf("%03d", rng.IntN(3))}
	}

	// Before the batch: some ids recorded, some receipts kept early.
	var before, ops []*store.Outcome
	next := 1000
	smscID := make(map[[2]int]int)
	for i := range n {
		for seq := 1; seq <= parts[i]; seq++ {
			next++
			k := next
			switch rng.IntN(4) {
			case 0:
				before = append(before, &store.Outcome{Part: true, Msg: id(i), Seq: seq, Forms: forms(k)})
				if rng.IntN(2) == 0 {
					// Its receipt too: the batch may submit it again
					// (a lost lease) after its message is settled.
					r := receipt(k)
					r.Forms = forms(k)
					before = append(before, r)
				}
				smscID[[2]int{i, seq}] = k
			case 1:
				r := receipt(k)
				r.Forms = forms(k)
				before = append(before, r)
				ops = append(ops, &store.Outcome{Part: true, Msg: id(i), Seq: seq, Forms: forms(k)})
				smscID[[2]int{i, seq}] = k
			case 2:
				ops = append(ops, &store.Outcome{Part: true, Msg: id(i), Seq: seq, Forms: forms(k)})
				smscID[[2]int{i, seq}] = k
			}
		}
	}
	for _, s := range stores {
		for _, o := range before {
			if err := apply(ctx, s, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The batch: receipts for recorded and batched ids (some twice),
	// resubmissions under new ids, receipts for ids nobody has.
	// In key order: the draws below must not follow the map's random
	// order, or a round would not be the same scenario from run to run.
	for _, key := range slices.SortedFunc(maps.Keys(smscID), func(a, b [2]int) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	}) {
		k := smscID[key]
		if rng.IntN(10) == 0 {
			next++
			ops = append(ops, &store.Outcome{Part: true, Msg: id(key[0]), Seq: key[1], Forms: forms(next)})
			k = next
		}
		for range rng.IntN(3) {
			ops = append(ops, receipt(k))
		}
	}
	for range 5 {
		next++
		ops = append(ops, receipt(next))
	}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })

	// In odd rounds the batch comes two minutes on: early receipts kept
	// before it are then too old for a part whose message failed (or was
	// otherwise settled) earlier in the batch, and only for that one.
	if round%2 == 1 {
		at = at.Add(2 * time.Minute)
	}

	ref := make([]*store.Outcome, len(ops)) // ref[i]: ops[i], made one call at a time
	for i, o := range ops {
		c := *o
		ref[i] = &c
	}
	if err := store.ApplyOutcomes(batched, ops); err != nil {
		t.Fatal(err)
	}
	// One call at a time: the SMSC ids in arrival order, then the receipts.
	serialOps := slices.Clone(ref)
	slices.SortStableFunc(serialOps, func(a, b *store.Outcome) int {
		switch {
		case a.Part == b.Part:
			return 0
		case a.Part:
			return -1
		}
		return 1
	})
	for _, o := range serialOps {
		if err := apply(ctx, serial, o); err != nil {
			t.Fatal(err)
		}
	}

	for _, q := range []string{
		`SELECT id, state, error FROM messages ORDER BY id`,
		`SELECT message_id, seq, smsc_id, state, err FROM parts ORDER BY message_id, seq`,
		`SELECT smsc_id, state, err FROM early_receipts ORDER BY smsc_id`,
		`SELECT message_id, lease_owner FROM notices ORDER BY message_id`,
	} {
		a, err := store.Dump(batched, q)
		if err != nil {
			t.Fatal(err)
		}
		b, err := store.Dump(serial, q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) {
			t.Errorf("round %d, %s:\nbatched %q\nserial  %q", round, q, a, b)
		}
	}
	// Each call's result, final or not included.
	for i, o := range ops {
		r := ref[i]
		if o.Final != r.Final || o.Res != r.Res {
			t.Errorf("round %d: %+v\nbatched: final %v, %+v\nserial:  final %v, %+v", round, *o, o.Final, o.Res, r.Final, r.Res)
		}
	}
}

// apply makes o's call on s.
func apply(ctx context.Context, s *store.Store, o *store.Outcome) (err error) {
	if o.Part {
		o.Final, err = s.PartSubmitted(ctx, o.Msg, o.Seq, "", o.Forms)
		return err
	}
	o.Res, err = s.Receipt(ctx, "", o.Forms, o.State, o.Err)
	return err
}

// envRounds is def, or SWITCHBOARD_BATCH_ROUNDS for a longer search: how
// many rounds (seeds) TestBatchAsSequence and TestMixedBatchesMatchOneByOne
// play.
func envRounds(def int) int {
	var n int
	fmt.Sscan(os.Getenv("SWITCHBOARD_BATCH_ROUNDS"), &n)
	if n <= 0 {
		return def
	}
	return n
}

// OnCommit is told of every group commit: the writes it held, the time it
// took.
func TestOnCommit(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var (
			mu      sync.Mutex
			calls   int
			writes  int
			nonzero = true
		)
		s.OnCommit(func(n int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			writes += n
			nonzero = nonzero && d > 0
		})
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := &store.Outbound{SenderJID: aliceJID, SenderNumber: aliceNum, Dest: phoneNum, Body: fmt.Sprint(i), Parts: 1}
				if err := s.AcceptOutbound(ctx, []*store.Outbound{m}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if writes != n || calls != store.GroupCommits(s) || !nonzero {
			t.Errorf("OnCommit: %d calls for %d writes (durations all > 0: %v); want %d writes in %d commits",
				calls, writes, nonzero, n, store.GroupCommits(s))
		}
	})
}
