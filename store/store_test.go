package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/smsgw/dlr"
	"switchboard/store"
	"switchboard/store/storetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// engines runs f against a fresh SQLite file and a fresh PostgreSQL database.
var engines = storetest.Engines

// openStore opens the store at dsn, failing the test if it cannot.
func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// engineStores runs f on SQLite and on PostgreSQL with open, which opens
// a fresh store of that engine, closed when the test ends: for tests that
// hold the same calls on two stores to the same outcome.
func engineStores(t *testing.T, f func(t *testing.T, open func() *store.Store)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			f(t, func() *store.Store {
				dsn := "sqlite:" + filepath.Join(t.TempDir(), "sb.db")
				if engine == "postgres" {
					dsn = testenv.StartPostgres(t)
				}
				s := openStore(t, dsn)
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

// dsns runs f with the address of a fresh SQLite file and of a fresh
// PostgreSQL database, for tests that open and reopen the store.
func dsns(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite:"+filepath.Join(t.TempDir(), "sb.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, testenv.StartPostgres(t)) })
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"", "mysql://x", "sqlite:"} {
		if _, err := store.Open(ctx, dsn); err == nil {
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
	// Reopening applies no migration twice.
	path := "sqlite:" + filepath.Join(t.TempDir(), "sb.db")
	for range 2 {
		s, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

func TestBindings(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.UnixMilli(1_700_000_000_000)
		store.SetClock(s, func() time.Time { return at })
		if prev, err := s.Bind(ctx, "+12015550100", "alice@example.com", "operator"); err != nil || prev != "" {
			t.Fatalf("Bind = %q, %v", prev, err)
		}
		// The number moves to bob; alice is told who had it.
		prev, err := s.Bind(ctx, "+12015550100", "bob@example.com", "sms")
		if err != nil || prev != "alice@example.com" {
			t.Fatalf("rebind = %q, %v", prev, err)
		}
		if _, err := s.NumberOf(ctx, "alice@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("alice still has a number: %v", err)
		}
		// Bob takes another number: his old one is released.
		if _, err := s.Bind(ctx, "+12015550101", "bob@example.com", "operator"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.OwnerOf(ctx, "+12015550100"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("old number still bound: %v", err)
		}
		b, err := s.NumberOf(ctx, "bob@example.com")
		if err != nil || b.Number != "+12015550101" || b.Method != "operator" || !b.VerifiedAt.Equal(at) {
			t.Fatalf("NumberOf = %+v, %v", b, err)
		}
		m, err := s.NumbersOf(ctx, []string{"bob@example.com", "nobody@example.com"})
		if err != nil || len(m) != 1 || m["bob@example.com"] != "+12015550101" {
			t.Fatalf("NumbersOf = %v, %v", m, err)
		}
		all, err := s.Bindings(ctx)
		if err != nil || len(all) != 1 {
			t.Fatalf("Bindings = %v, %v", all, err)
		}
		if j, err := s.Release(ctx, "+12015550101"); err != nil || j != "bob@example.com" {
			t.Fatalf("Release = %q, %v", j, err)
		}
		if _, err := s.Release(ctx, "+12015550101"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second Release = %v", err)
		}
	})
}

func accept(t *testing.T, s *store.Store, parts int) *store.Outbound {
	t.Helper()
	m := &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550199",
		StanzaID: "m1", WantReceipt: true, Body: "hello", Parts: parts, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.AcceptOutbound(context.Background(), []*store.Outbound{m}); err != nil {
		t.Fatal(err)
	}
	if m.ID == 0 {
		t.Fatal("no id assigned")
	}
	return m
}

func claimOne(t *testing.T, s *store.Store, owner string) *store.Outbound {
	t.Helper()
	got, err := s.ClaimOutbound(context.Background(), owner, 10, time.Minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("ClaimOutbound = %v, %v", got, err)
	}
	return got[0]
}

func notices(t *testing.T, s *store.Store) []store.Notice {
	t.Helper()
	ns, err := s.ClaimNotices(context.Background(), "test", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	if err := s.NoticesDone(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestOutboundLifecycle(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := accept(t, s, 2)
		c := claimOne(t, s, "a")
		if c.ID != m.ID || c.Attempts != 1 || c.Body != "hello" || !c.WantReceipt || len(c.Done) != 0 {
			t.Fatalf("claimed %+v", c)
		}
		// Claimed: no one else gets it.
		if more, _ := s.ClaimOutbound(ctx, "b", 10, time.Minute); len(more) != 0 {
			t.Fatalf("claimed twice: %v", more)
		}
		if final, err := s.PartSubmitted(ctx, m.ID, 1, "", []string{"1a", "26"}); err != nil || final {
			t.Fatalf("PartSubmitted 1 = %v, %v", final, err)
		}
		if final, err := s.PartSubmitted(ctx, m.ID, 2, "", []string{"1b", "27"}); err != nil || final {
			t.Fatalf("PartSubmitted 2 = %v, %v", final, err)
		}
		if st, _, _ := s.MessageState(ctx, m.ID); st != store.StateSubmitted {
			t.Fatalf("state = %s", st)
		}
		// Receipts matched through another form of the id (decimal).
		res, err := s.Receipt(ctx, "", []string{"26", "1a"}, "DELIVRD", "")
		if err != nil || !res.Matched || res.Final || res.Message != m.ID {
			t.Fatalf("Receipt 1 = %+v, %v", res, err)
		}
		if len(notices(t, s)) != 0 {
			t.Fatal("notice before all parts were delivered")
		}
		res, err = s.Receipt(ctx, "", []string{"27", "1b"}, "DELIVRD", "")
		if err != nil || !res.Final || !res.Unclaimed {
			t.Fatalf("Receipt 2 = %+v, %v (no notice sink: its notice waits to be claimed)", res, err)
		}
		// A duplicate receipt changes nothing.
		if res, err := s.Receipt(ctx, "", []string{"1b"}, "UNDELIV", ""); err != nil || res.Final {
			t.Fatalf("duplicate = %+v, %v", res, err)
		}
		ns := notices(t, s)
		if len(ns) != 1 || ns[0].State != store.StateDelivered || ns[0].StanzaID != "m1" || ns[0].UserJID != "alice@example.com/phone" {
			t.Fatalf("notices = %+v", ns)
		}
		if len(notices(t, s)) != 0 {
			t.Fatal("notice sent twice")
		}
	})
}

func TestEarlyReceiptAndFailure(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := accept(t, s, 1)
		claimOne(t, s, "a")
		// The receipt arrives before submit_sm_resp.
		res, err := s.Receipt(ctx, "", []string{"ff", "255"}, "UNDELIV", "001")
		if err != nil || res.Matched {
			t.Fatalf("early Receipt = %+v, %v", res, err)
		}
		final, err := s.PartSubmitted(ctx, m.ID, 1, "", []string{"255", "ff"})
		if err != nil || !final {
			t.Fatalf("PartSubmitted = %v, %v", final, err)
		}
		st, reason, _ := s.MessageState(ctx, m.ID)
		if st != store.StateFailed || reason == "" {
			t.Fatalf("state = %s %q", st, reason)
		}
		ns := notices(t, s)
		if len(ns) != 1 || ns[0].State != store.StateFailed || ns[0].Error != reason {
			t.Fatalf("notices = %+v", ns)
		}
	})
}

func TestRetryLeaseAndFail(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := accept(t, s, 2)
		claimOne(t, s, "a")
		if _, err := s.PartSubmitted(ctx, m.ID, 1, "", []string{"10"}); err != nil {
			t.Fatal(err)
		}
		// Nothing sent for part 2: requeued now, attempt refunded.
		if err := s.Retry(ctx, m.ID, time.Now().Add(-time.Second), "not bound", true); err != nil {
			t.Fatal(err)
		}
		c := claimOne(t, s, "a")
		if c.Attempts != 1 || !c.Done[1] || c.Done[2] {
			t.Fatalf("after retry: %+v", c)
		}
		// A retry in the future is not due.
		if err := s.Retry(ctx, m.ID, time.Now().Add(time.Hour), "throttled", false); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ClaimOutbound(ctx, "a", 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed before its time: %v", got)
		}
		// An expired lease (its instance died) makes it claimable by another.
		m2 := accept(t, s, 1)
		if got, _ := s.ClaimOutbound(ctx, "dead", 10, -time.Second); len(got) != 1 || got[0].ID != m2.ID {
			t.Fatalf("claim = %v", got)
		}
		c = claimOne(t, s, "alive")
		if c.ID != m2.ID || c.Attempts != 2 {
			t.Fatalf("reclaimed %+v", c)
		}
		if err := s.Fail(ctx, m2.ID, "carrier refused"); err != nil {
			t.Fatal(err)
		}
		ns := notices(t, s)
		if len(ns) != 1 || ns[0].ID != m2.ID || ns[0].Error != "carrier refused" {
			t.Fatalf("notices = %+v", ns)
		}
	})
}

// TestOpenExclusive: one gateway (OpenExclusive) on a SQLite file at a
// time, which other processes (Open: switchboard numbers, check) still
// open beside it; the file is free again once the gateway closed it.
func TestOpenExclusive(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "sb.db")
	first, err := store.OpenExclusive(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := store.OpenExclusive(ctx, dsn); !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "use PostgreSQL for several instances") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("a second gateway on the file: %v; want ErrInUse, saying what to do", err)
	}
	beside, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open beside the gateway: %v", err)
	}
	beside.Close()
	first.Close()
	again, err := store.OpenExclusive(ctx, dsn)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}

// TestClaimLeases: a message accepted already leased (handed to the
// instance that took it) and one claimed are not claimed by another
// instance while their leases run, and are once they ran out; so is a
// submitting row as a store written before next_attempt_at held the
// lease's end left it (0 there), only once its lease_until passed. A claim
// takes the lowest ids first, up to its limit, and leaves the rest due.
func TestClaimLeases(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		start := time.Now()
		at := func(d time.Duration) { store.SetClock(s, func() time.Time { return start.Add(d) }) }
		at(0)
		handed := &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550199",
			Body: "handed", Parts: 1, LeaseOwner: "a", LeaseUntil: start.Add(time.Minute)}
		if err := s.AcceptOutbound(ctx, []*store.Outbound{handed}); err != nil {
			t.Fatal(err)
		}
		queued := accept(t, s, 1)
		if got, err := s.ClaimOutbound(ctx, "a", 10, 2*time.Minute); err != nil || len(got) != 1 || got[0].ID != queued.ID {
			t.Fatalf("ClaimOutbound = %v, %v; want the queued message %d only", got, err, queued.ID)
		}
		old := accept(t, s, 1)
		if err := store.Exec(s, `UPDATE messages SET state = 'submitting', lease_owner = 'old', next_attempt_at = 0, lease_until = $1 WHERE id = $2`,
			start.Add(3*time.Minute).UnixMilli(), old.ID); err != nil {
			t.Fatal(err)
		}
		claimed := func(d time.Duration, limit int) []int64 {
			t.Helper()
			at(d)
			got, err := s.ClaimOutbound(ctx, "b", limit, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			return ids
		}
		if ids := claimed(59*time.Second, 10); len(ids) != 0 {
			t.Fatalf("claimed %v while every lease runs", ids)
		}
		if ids := claimed(61*time.Second, 10); !slices.Equal(ids, []int64{handed.ID}) {
			t.Fatalf("claimed %v after the handed message's lease; want [%d]", ids, handed.ID)
		}
		if ids := claimed(121*time.Second, 10); !slices.Equal(ids, []int64{queued.ID}) {
			t.Fatalf("claimed %v after the claimed message's lease; want [%d]", ids, queued.ID)
		}
		if ids := claimed(179*time.Second, 10); len(ids) != 0 {
			t.Fatalf("claimed %v before the old row's lease_until", ids)
		}
		if ids := claimed(181*time.Second, 10); !slices.Equal(ids, []int64{old.ID}) {
			t.Fatalf("claimed %v after the old row's lease_until; want [%d]", ids, old.ID)
		}
		var due []int64
		for range 5 {
			due = append(due, accept(t, s, 1).ID)
		}
		if ids := claimed(182*time.Second, 2); !slices.Equal(ids, due[:2]) {
			t.Fatalf("claimed %v with a limit of 2; want the lowest ids %v", ids, due[:2])
		}
		if ids := claimed(183*time.Second, 10); !slices.Equal(ids, due[2:]) {
			t.Fatalf("claimed %v next; want the rest %v", ids, due[2:])
		}
	})
}

// TestClaimPlan: on PostgreSQL the claim reads each state from
// messages_work by a plain index scan, never a bitmap scan, which cannot
// mark dead entries: every message passes through submitting, and as a
// bitmap scan each claim visited every one's row until a vacuum (see
// claimable).
func TestClaimPlan(t *testing.T) {
	s := storetest.Postgres(t)
	plans, err := store.WorkPlans(s)
	if err != nil {
		t.Fatal(err)
	}
	p := plans["claimable"]
	if strings.Contains(p, "Bitmap Index Scan on messages_work") || strings.Count(p, "Index Scan using messages_work") != 2 {
		t.Errorf("plan of the claim:\n%s\nwant two index scans of messages_work and no bitmap scan of it", p)
	}
}

// TestReplan: a claimed message none of whose parts has an SMSC id takes
// a new count of parts, which decides when it is submitted; not when a
// part has an id, nor when another instance holds it.
func TestReplan(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := accept(t, s, 2)
		claimOne(t, s, "a")
		if ok, err := s.Replan(ctx, m.ID, "b", 3); err != nil || ok {
			t.Fatalf("Replan by another instance = %v, %v", ok, err)
		}
		if ok, err := s.Replan(ctx, m.ID, "a", 3); err != nil || !ok {
			t.Fatalf("Replan = %v, %v", ok, err)
		}
		for seq := 1; seq <= 3; seq++ {
			if _, err := s.PartSubmitted(ctx, m.ID, seq, "", []string{fmt.Sprint(100 + seq)}); err != nil {
				t.Fatal(err)
			}
			want := store.StateSubmitting
			if seq == 3 {
				want = store.StateSubmitted
			}
			if st, _, _ := s.MessageState(ctx, m.ID); st != want {
				t.Fatalf("after part %d of 3: %s, want %s", seq, st, want)
			}
		}
		// A part with an id fixes the count.
		m2 := accept(t, s, 3)
		claimOne(t, s, "a")
		if _, err := s.PartSubmitted(ctx, m2.ID, 1, "", []string{"201"}); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Replan(ctx, m2.ID, "a", 2); err != nil || ok {
			t.Fatalf("Replan after a part went = %v, %v", ok, err)
		}
		if _, err := s.PartSubmitted(ctx, m2.ID, 2, "", []string{"202"}); err != nil {
			t.Fatal(err)
		}
		if st, _, _ := s.MessageState(ctx, m2.ID); st != store.StateSubmitting {
			t.Fatalf("2 parts of 3 with ids: %s", st)
		}
	})
}

func TestInboundAndFragments(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		key := store.FragmentKey{Source: "+12015550199", Dest: "+12015550100", Ref: 7, Total: 2}
		frags, err := s.AddFragment(ctx, store.Fragment{FragmentKey: key, Seq: 2, Payload: []byte("world")})
		if err != nil || len(frags) != 1 {
			t.Fatalf("AddFragment = %v, %v", frags, err)
		}
		// The SMSC retries part 2: still one copy.
		if frags, _ = s.AddFragment(ctx, store.Fragment{FragmentKey: key, Seq: 2, Payload: []byte("world")}); len(frags) != 1 {
			t.Fatalf("duplicate fragment stored: %v", frags)
		}
		frags, err = s.AddFragment(ctx, store.Fragment{FragmentKey: key, Seq: 1, Payload: []byte("hello ")})
		if err != nil || len(frags) != 2 || frags[0].Seq != 1 || string(frags[1].Payload) != "world" {
			t.Fatalf("AddFragment = %v, %v", frags, err)
		}
		in := &store.Inbound{Source: key.Source, Dest: key.Dest, RecipientJID: "alice@example.com", Body: "hello world", FragmentKey: &key}
		if err := s.AcceptInbound(ctx, in); err != nil {
			t.Fatal(err)
		}
		if groups, err := s.StaleFragments(ctx, time.Now().Add(time.Hour)); err != nil || len(groups) != 0 {
			t.Fatalf("fragments left: %v, %v", groups, err)
		}
		ns := notices(t, s)
		if len(ns) != 1 || ns[0].Direction != store.In || ns[0].Body != "hello world" || ns[0].UserJID != "alice@example.com" {
			t.Fatalf("notices = %+v", ns)
		}
		if st, _, _ := s.MessageState(ctx, in.ID); st != store.StateDelivered {
			t.Fatalf("inbound state = %s", st)
		}
		// An incomplete message goes stale.
		k2 := store.FragmentKey{Source: "+12015550199", Dest: "+12015550100", Ref: 8, Total: 3}
		if _, err := s.AddFragment(ctx, store.Fragment{FragmentKey: k2, Seq: 1, Payload: []byte("a")}); err != nil {
			t.Fatal(err)
		}
		if groups, _ := s.StaleFragments(ctx, time.Now().Add(-time.Hour)); len(groups) != 0 {
			t.Fatalf("fresh fragments reported stale: %v", groups)
		}
		groups, err := s.StaleFragments(ctx, time.Now().Add(time.Second))
		if err != nil || len(groups) != 1 || groups[0][0].FragmentKey != k2 {
			t.Fatalf("StaleFragments = %v, %v", groups, err)
		}
		// Dropped (its number was released), it is gone, and only it.
		k3 := store.FragmentKey{Source: "+12015550199", Dest: "+12015550100", Ref: 9, Total: 2}
		if _, err := s.AddFragment(ctx, store.Fragment{FragmentKey: k3, Seq: 2, Payload: []byte("b")}); err != nil {
			t.Fatal(err)
		}
		if err := s.DropFragments(ctx, k2); err != nil {
			t.Fatal(err)
		}
		groups, err = s.StaleFragments(ctx, time.Now().Add(time.Second))
		if err != nil || len(groups) != 1 || groups[0][0].FragmentKey != k3 {
			t.Fatalf("StaleFragments after dropping %v = %v, %v", k2, groups, err)
		}
		// A released notice is claimed again.
		in2 := &store.Inbound{Source: "+12015550199", Dest: "+12015550100", RecipientJID: "alice@example.com", Body: "again"}
		if err := s.AcceptInbound(ctx, in2); err != nil {
			t.Fatal(err)
		}
		ns, _ = s.ClaimNotices(ctx, "x", 10, time.Minute)
		if len(ns) != 1 {
			t.Fatalf("claim = %v", ns)
		}
		// Only by the instance that holds it.
		if err := s.ReleaseNotices(ctx, "y", []int64{ns[0].ID}); err != nil {
			t.Fatal(err)
		}
		if ns := notices(t, s); len(ns) != 0 {
			t.Fatalf("released by another instance: %v", ns)
		}
		// In a list longer than a statement takes (the router gives
		// back up to 65,536 at once); the connection serves on after.
		many := make([]int64, 40000)
		for i := range many {
			many[i] = ns[0].ID + int64(i)
		}
		if err := s.ReleaseNotices(ctx, "x", many); err != nil {
			t.Fatal(err)
		}
		if ns := notices(t, s); len(ns) != 1 || ns[0].Body != "again" {
			t.Fatalf("after release: %v", ns)
		}
	})
}

// TestWriteAfterClose: a write racing Close gets an error, never a panic.
func TestWriteAfterClose(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AcceptInbound(ctx, &store.Inbound{Source: "+12015550199", Dest: "+12015550100", RecipientJID: "a@example.com", Body: "x"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.AcceptInbound(ctx, &store.Inbound{Source: "+12015550199", Dest: "+12015550100", RecipientJID: "a@example.com", Body: "y"}); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

// The router's lookups, a message's state, the archive and the operators'
// listings are read beside a write in progress (on SQLite through the read
// handle, on PostgreSQL through another connection), not after it: a long
// read never holds SQLite's one writer connection, where every write
// would wait behind it.
func TestReadsBesideWriter(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.Bind(ctx, "+12015550100", "alice@example.com", "sms"); err != nil {
			t.Fatal(err)
		}
		m := accept(t, s, 1)
		release := store.HoldWriter(s)
		defer release()
		read := make(chan error, 1)
		go func() {
			owners, err := s.OwnersOf(ctx, []string{"+12015550100", "+12015550101", "+12015550102"})
			if err == nil && (len(owners) != 1 || owners["+12015550100"] != "alice@example.com") {
				err = fmt.Errorf("OwnersOf = %v", owners)
			}
			if err == nil {
				var st string
				st, _, err = s.MessageState(ctx, m.ID)
				if err == nil && st != store.StateQueued {
					err = fmt.Errorf("state %q", st)
				}
			}
			if err == nil {
				var p store.ArchivePage
				p, err = s.Archive(ctx, store.ArchiveQuery{User: "alice@example.com", Max: 10})
				if err == nil && (p.Count != 1 || len(p.Items) != 1 || p.Items[0].ID != m.ID) {
					err = fmt.Errorf("Archive = %+v", p)
				}
			}
			for _, long := range []func() error{
				func() error { _, err := s.ArchiveMetadata(ctx, "alice@example.com"); return err },
				func() error { _, err := s.Bindings(ctx); return err },
				func() error { _, err := s.Counts(ctx); return err },
				func() error { _, err := s.RecentFailures(ctx, 10); return err },
			} {
				if err == nil {
					err = long()
				}
			}
			read <- err
		}()
		select {
		case err := <-read:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("reads waited for the write in progress")
		}
	})
}

// Most statements reach SQLite as written, numbered arguments ($1) and
// all, not through the rewriting TestNumberedArguments checks: each must
// take its own argument whichever SQLite library is linked.
func TestNumberedArgumentsAsWritten(t *testing.T) {
	db, err := store.OpenSQLite(filepath.Join(t.TempDir(), "args.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := `SELECT $3 || $1 || '$2' || $2 || $3`
	var got string
	if err := db.QueryRow(q, "a", "b", "c").Scan(&got); err != nil {
		t.Fatal(err)
	}
	st, err := db.Prepare(q)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var prepared string
	if err := st.QueryRow("a", "b", "c").Scan(&prepared); err != nil {
		t.Fatal(err)
	}
	if want := "ca$2bc"; got != want || prepared != want {
		t.Errorf("%s with a, b, c = %q, prepared %q; want %q", q, got, prepared, want)
	}
}

// The migration to the notices table carries the notices of a store
// written before it: a waiting one is claimable at once, one leased by an
// instance stays with it until its lease runs out.
func TestMigrateNotices(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sb.db")
	s, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, body := range []string{"waiting", "leased", "sent"} {
		in := &store.Inbound{Source: "+12015550999", Dest: "+12015550100", RecipientJID: "alice@example.com", Body: body}
		if err := s.AcceptInbound(ctx, in); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	s.Close()

	// Back to the schema before the migration, with the notices in the
	// messages' notify column as it kept them.
	db, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	leasedUntil := time.Now().Add(time.Hour).UnixMilli()
	for _, q := range []string{
		`DELETE FROM schema_migrations WHERE version = 9`, // the notices' migration
		`DROP TABLE notices`,
		`CREATE INDEX messages_notify ON messages (notify, id) WHERE notify <> 0`,
		fmt.Sprintf(`UPDATE messages SET notify = 1 WHERE id = %d`, ids[0]),
		fmt.Sprintf(`UPDATE messages SET notify = 2, lease_owner = 'i9', lease_until = %d WHERE id = %d`, leasedUntil, ids[1]),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err = store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ns, err := s.ClaimNotices(ctx, "i1", 10, time.Minute)
	if err != nil || len(ns) != 1 || ns[0].ID != ids[0] || ns[0].Body != "waiting" {
		t.Fatalf("claimed %+v, %v; want the waiting one (%d) only", ns, err, ids[0])
	}
	if err := s.NoticesDone(ctx, []int64{ids[0]}); err != nil {
		t.Fatal(err)
	}
	store.SetClock(s, func() time.Time { return time.UnixMilli(leasedUntil + 1) })
	ns, err = s.ClaimNotices(ctx, "i1", 10, time.Minute)
	if err != nil || len(ns) != 1 || ns[0].ID != ids[1] {
		t.Fatalf("claimed %+v, %v after the lease; want the leased one (%d)", ns, err, ids[1])
	}
}

// RoutingOf answers, in one statement, what NumbersOf, OwnersOf and
// SettingsOf answer; and the same through them for lists too long for one.
func TestRoutingOf(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i, j := range []string{"alice@example.com", "bob@example.com", "carol@example.com"} {
			if _, err := s.Bind(ctx, fmt.Sprintf("+1201555010%d", i), j, "sms"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetSettings(ctx, "bob@example.com", store.Settings{Fallback: true, FallbackAfter: 45 * time.Second}); err != nil {
			t.Fatal(err)
		}
		jids := []string{"alice@example.com", "bob@example.com", "nobody@example.com"}
		dests := []string{"+12015550102", "+12015550199"}
		for _, pad := range []int{0, 600} {
			js, ds := jids, dests
			for i := range pad { // past one statement's lists
				js = append(js, fmt.Sprintf("u%d@example.com", i))
				ds = append(ds, fmt.Sprintf("+1201666%04d", i))
			}
			r, err := s.RoutingOf(ctx, js, ds)
			if err != nil {
				t.Fatal(err)
			}
			want := store.Routing{
				Numbers:  map[string]string{"alice@example.com": "+12015550100", "bob@example.com": "+12015550101"},
				Owners:   map[string]string{"+12015550102": "carol@example.com"},
				Settings: map[string]store.Settings{"bob@example.com": {Fallback: true, FallbackAfter: 45 * time.Second}},
				Forms:    map[store.Form]string{},
			}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("%d more: RoutingOf = %+v, want %+v", pad, r, want)
			}
		}
	})
}

// Numbered arguments keep their meaning however SQLite is handed them:
// repeated, out of order, and hundreds in one statement.
func TestNumberedArguments(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		var got string
		if err := store.QueryRow(s, `SELECT CAST($2 AS TEXT) || CAST($1 AS TEXT) || CAST($2 AS TEXT) || '$'`, "a", "b").Scan(&got); err != nil || got != "bab$" {
			t.Errorf("$2 $1 $2 = %q, %v; want bab$", got, err)
		}
		const n = 300
		args := make([]any, n)
		terms := make([]string, n)
		for i := range args {
			args[i] = int64(i + 1)
			// Each term weighs its argument by its position, so a shuffled
			// binding gives another sum.
			terms[i] = fmt.Sprintf("%d * CAST($%d AS BIGINT)", n-i, n-i)
		}
		var sum int64
		if err := store.QueryRow(s, `SELECT `+strings.Join(terms, " + "), args...).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		want := int64(0)
		for i := int64(1); i <= n; i++ {
			want += i * i
		}
		if sum != want {
			t.Errorf("sum of %d weighted arguments = %d, want %d", n, sum, want)
		}
	})
}

// Messages accepted at once share transactions (on PostgreSQL, a batch of
// one runs as a single statement, without one): each gets the id of its
// own row, and a message refused by the database fails only its call.
func TestAcceptTogether(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 64
		var (
			wg   sync.WaitGroup
			msgs = make([][]*store.Outbound, n)
			errs = make([]error, n)
		)
		for i := range msgs {
			for j := range 1 + i%3 {
				msgs[i] = append(msgs[i], &store.Outbound{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100",
					Dest: "+12015550199", StanzaID: fmt.Sprintf("s%d-%d", i, j), Body: "hello", Parts: 1})
			}
			if i == 7 {
				msgs[i][0].Body = "bad\x00" // PostgreSQL refuses NUL in text; SQLite keeps it
			}
			wg.Go(func() { errs[i] = s.AcceptOutbound(ctx, msgs[i]) })
		}
		wg.Wait()
		seen := make(map[int64]bool)
		for i, ms := range msgs {
			if i == 7 && store.IsPostgres(s) {
				if errs[i] == nil {
					t.Errorf("a text with NUL was accepted on PostgreSQL")
				}
				continue
			}
			if errs[i] != nil {
				t.Fatalf("AcceptOutbound %d: %v", i, errs[i])
			}
			for _, m := range ms {
				if m.ID == 0 || seen[m.ID] {
					t.Fatalf("message %s: id %d (zero or given twice)", m.StanzaID, m.ID)
				}
				seen[m.ID] = true
				got, err := store.Dump(s, fmt.Sprintf("SELECT stanza_id FROM messages WHERE id = %d", m.ID))
				if err != nil || len(got) != 1 || got[0] != m.StanzaID {
					t.Fatalf("row %d holds %q, %v; want %s", m.ID, got, err, m.StanzaID)
				}
			}
		}
	})
}

// TestReceiptIDForms: a receipt whose id, in its several forms (package
// dlr), names parts of several messages goes to the one its SMSC's
// receipts are known to mean: learnt, per SMSC, from the receipts that
// name one message only; the id as given while nothing is known.
func TestReceiptIDForms(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		// submit records a one-part message as submitted under id by smsc.
		submit := func(smsc, id string) int64 {
			t.Helper()
			m := accept(t, s, 1)
			claimOne(t, s, "a")
			if _, err := s.PartSubmitted(ctx, m.ID, 1, smsc, dlr.IDForms(id)); err != nil {
				t.Fatal(err)
			}
			return m.ID
		}
		receipt := func(smsc, id, stat string) int64 {
			t.Helper()
			res, err := s.Receipt(ctx, smsc, dlr.IDForms(id), stat, "")
			if err != nil {
				t.Fatal(err)
			}
			return res.Message
		}
		// SMSC "dec" writes ids in decimal everywhere. Its receipt for "10"
		// is message "10"'s, though "10" read as hex is 16, also waiting.
		dec := make(map[string]int64)
		for i := 10; i <= 16; i++ {
			dec[fmt.Sprint(i)] = submit("dec", fmt.Sprint(i))
		}
		if got := receipt("dec", "10", "UNDELIV"); got != dec["10"] {
			t.Fatalf("first receipt for 10 went to message %d, not %d (10) nor a guess", got, dec["10"])
		}
		for i := 11; i <= 16; i++ {
			if got := receipt("dec", fmt.Sprint(i), "DELIVRD"); got != dec[fmt.Sprint(i)] {
				t.Errorf("receipt for %d went to message %d, want %d", i, got, dec[fmt.Sprint(i)])
			}
		}
		if st, _, _ := s.MessageState(ctx, dec["10"]); st != store.StateFailed {
			t.Errorf("message 10 is %s, want failed", st)
		}
		if st, _, _ := s.MessageState(ctx, dec["16"]); st != store.StateDelivered {
			t.Errorf("message 16 is %s, want delivered", st)
		}

		// SMSC "mixed" answers submit_sm in hex and reports in decimal.
		// Learnt from 0b (11), its receipt "26" is message 1a's, not 26's.
		first := submit("mixed", "0b")
		if got := receipt("mixed", "11", "DELIVRD"); got != first {
			t.Fatalf("receipt 11 went to message %d, want %d (0b)", got, first)
		}
		hex1a, hex26 := submit("mixed", "1a"), submit("mixed", "26")
		if got := receipt("mixed", "26", "DELIVRD"); got != hex1a {
			t.Errorf("receipt 26 went to message %d, want %d (1a), not %d (26)", got, hex1a, hex26)
		}
		if got := receipt("mixed", "38", "DELIVRD"); got != hex26 {
			t.Errorf("receipt 38 went to message %d, want %d (26)", got, hex26)
		}
		// An operator who knows "set" answers in hex and reports in decimal
		// says so: no receipt need teach it, and the single digits, the
		// same in both, still match.
		s.SetReceiptIDs("set", store.ReceiptIDsDecHex)
		set1a, set26, set5 := submit("set", "1a"), submit("set", "26"), submit("set", "5")
		if got := receipt("set", "26", "DELIVRD"); got != set1a {
			t.Errorf("set: receipt 26 went to message %d, want %d (1a), not %d (26)", got, set1a, set26)
		}
		if got := receipt("set", "5", "DELIVRD"); got != set5 {
			t.Errorf("set: receipt 5 went to message %d, want %d", got, set5)
		}
		// What "mixed" taught does not change "dec".
		d20, d32 := submit("dec", "20"), submit("dec", "32")
		if got := receipt("dec", "20", "UNDELIV"); got != d20 {
			t.Errorf("dec receipt 20 went to message %d, want %d (20), not %d (32)", got, d20, d32)
		}
	})
}

// TestFailRelayCondition: a relay's failure keeps the stanza error
// condition it was given, and its notice carries it; a relay failed with
// the limits' text before the condition had a column of its own, whose
// notice still waits, gets policy-violation from the migration.
// TestSchemaNewer: a database a newer release migrated is refused, naming
// both migrations, rather than run on a schema this release does not know.
func TestSchemaNewer(t *testing.T) { dsns(t, testSchemaNewer) }

func testSchemaNewer(t *testing.T, dsn string) {
	s := openStore(t, dsn)
	must(t, store.Exec(s, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, store.Schema()+1))
	s.Close()
	s, err := store.Open(context.Background(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("a database one migration ahead opened")
	}
	want := fmt.Sprintf("at migration %d and this release knows %d", store.Schema()+1, store.Schema())
	if !errors.Is(err, store.ErrSchemaNewer) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open: %v; want ErrSchemaNewer saying %q", err, want)
	}
}

func TestFailRelayCondition(t *testing.T) { dsns(t, testFailRelayCondition) }

func testFailRelayCondition(t *testing.T, dsn string) {
	ctx := context.Background()
	s := openStore(t, dsn)
	ms := []*store.Outbound{
		{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: bobNum, StanzaID: "policy", Body: "one", PeerJID: bobJID},
		{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: bobNum, StanzaID: "default", Body: "two", PeerJID: bobJID},
		{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: bobNum, StanzaID: "old", Body: "three", PeerJID: bobJID},
	}
	must(t, s.AcceptOutbound(ctx, ms))
	for i, f := range []struct{ reason, condition string }{
		{"no receipt came, and the limits said no", "policy-violation"},
		{"it could not be handed to the recipient's server", ""},
		{"no receipt came, and the SMS limits refused it as SMS: over the day's 3 SMS", ""},
	} {
		if ok, err := s.FailRelay(ctx, ms[i].ID, f.reason, f.condition); err != nil || !ok {
			t.Fatalf("FailRelay(%s) = %v, %v", ms[i].StanzaID, ok, err)
		}
	}
	// The third as failed before the column: its condition only in the text.
	// That migration alone runs again.
	v := store.MigrationVersion("ADD COLUMN error_condition")
	if v == 0 {
		t.Fatal("no migration adds error_condition")
	}
	must(t, store.Exec(s, `DELETE FROM schema_migrations WHERE version = $1`, v))
	must(t, store.Exec(s, `ALTER TABLE messages DROP COLUMN error_condition`))
	s.Close()

	s = openStore(t, dsn)
	defer s.Close()
	ns, err := s.ClaimNotices(ctx, "t", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	for _, n := range ns {
		got[n.StanzaID] = n.ErrorCondition
	}
	want := map[string]string{"policy": "", "default": "", "old": "policy-violation"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conditions after the migration = %v, want %v (the column is new: only the old failure's is read from its text)", got, want)
	}
	// Failed after the migration: the condition given.
	more := []*store.Outbound{
		{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: bobNum, StanzaID: "policy2", Body: "four", PeerJID: bobJID},
		{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: bobNum, StanzaID: "default2", Body: "five", PeerJID: bobJID},
	}
	must(t, s.AcceptOutbound(ctx, more))
	for i, c := range []string{"policy-violation", ""} {
		if ok, err := s.FailRelay(ctx, more[i].ID, "why", c); err != nil || !ok {
			t.Fatalf("FailRelay(%s) = %v, %v", more[i].StanzaID, ok, err)
		}
	}
	ns, err = s.ClaimNotices(ctx, "t", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got = make(map[string]string)
	for _, n := range ns {
		got[n.StanzaID] = n.ErrorCondition
	}
	if want := map[string]string{"policy2": "policy-violation", "default2": ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("conditions = %v, want %v", got, want)
	}
}

// TestAckRelays: receipts for relayed messages, recorded together, deliver
// the ones still relayed or sent, and name those; a message settled
// otherwise (failed, or gone as SMS) and an unknown id are left as they are.
func TestAckRelays(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		relay := func(id string, fallback bool) *store.Outbound {
			m := &store.Outbound{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: bobNum, StanzaID: id, Body: id, PeerJID: bobJID}
			if fallback {
				m.FallbackAt = time.Now().Add(time.Hour)
			}
			return m
		}
		ms := []*store.Outbound{relay("relayed", true), relay("sent", false), relay("failed", false), relay("sms", true)}
		must(t, s.AcceptOutbound(ctx, ms))
		if ok, err := s.FailRelay(ctx, ms[2].ID, "bounced", ""); err != nil || !ok {
			t.Fatalf("FailRelay = %v, %v", ok, err)
		}
		if fell, err := s.FallBackIDs(ctx, []int64{ms[3].ID}, time.Now()); err != nil || len(fell) != 1 {
			t.Fatalf("FallBackIDs = %v, %v", fell, err)
		}
		ids := []int64{ms[0].ID, ms[1].ID, ms[2].ID, ms[3].ID, ms[0].ID, 999999}
		fresh, err := s.AckRelays(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(fresh) != 2 || !fresh[ms[0].ID] || !fresh[ms[1].ID] {
			t.Errorf("AckRelays = %v; want %d and %d", fresh, ms[0].ID, ms[1].ID)
		}
		for i, want := range []string{store.StateDelivered, store.StateDelivered, store.StateFailed, store.StateQueued} {
			if st, _, err := s.MessageState(ctx, ms[i].ID); err != nil || st != want {
				t.Errorf("%s: state %s, %v; want %s", ms[i].StanzaID, st, err, want)
			}
		}
		// Again: nothing is fresh.
		if fresh, err := s.AckRelays(ctx, ids); err != nil || len(fresh) != 0 {
			t.Errorf("AckRelays again = %v, %v; want none", fresh, err)
		}
	})
}

// TestFindRelays: relayed messages looked up together (one statement on
// PostgreSQL) are those FindRelay finds one by one: the latest with the
// key, none for a key naming no relay (an SMS, another sender, an unknown
// id).
func TestFindRelays(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ms := []*store.Outbound{
			{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: bobNum, StanzaID: "a", Body: "first a", PeerJID: bobJID},
			{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: bobNum, StanzaID: "a", Body: "second a", PeerJID: bobJID, WantReceipt: true},
			{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: bobNum, StanzaID: "b", Body: "b", PeerJID: bobJID, FallbackAt: time.Now().Add(time.Hour)},
			{SenderJID: aliceJID + "/pc", SenderNumber: aliceNum, Dest: "+12015550188", StanzaID: "sms", Body: "an SMS", Parts: 1},
		}
		must(t, s.AcceptOutbound(ctx, ms))
		key := func(dest, id string) store.RelayKey {
			return store.RelayKey{SenderNumber: aliceNum, PeerNumber: dest, StanzaID: id}
		}
		keys := []store.RelayKey{key(bobNum, "a"), key(bobNum, "b"), key(bobNum, "a"), key(bobNum, "zzz"), key("+12015550188", "sms"),
			{SenderNumber: bobNum, PeerNumber: aliceNum, StanzaID: "a"}}
		got, err := s.FindRelays(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Errorf("FindRelays found %d: %+v; want 2", len(got), got)
		}
		if r := got[keys[0]]; r.ID != ms[1].ID || !r.WantReceipt || r.Armed || r.SenderJID != aliceJID+"/pc" {
			t.Errorf("key a: %+v; want the latest, %d, asking a receipt, not armed", r, ms[1].ID)
		}
		if r := got[keys[1]]; r.ID != ms[2].ID || r.State != store.StateRelayed || !r.Armed {
			t.Errorf("key b: %+v; want %d, relayed, armed", r, ms[2].ID)
		}
		for _, k := range keys {
			one, err := s.FindRelay(ctx, k.SenderNumber, k.PeerNumber, k.StanzaID)
			if want, ok := got[k]; one != want || (ok != (err == nil)) {
				t.Errorf("FindRelay(%+v) = %+v, %v; FindRelays gave %+v", k, one, err, want)
			}
		}
	})
}

// TestOpenHidesPassword: an unreachable or unreadable PostgreSQL DSN is
// reported without its password, wherever the DSN holds it.
func TestOpenHidesPassword(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ dsn, secret string }{
		{"postgres://gw:Sekr1tpw@127.0.0.1:1/db?sslmode=disable", "Sekr1tpw"},
		{"postgres://127.0.0.1:1/db?user=gw&password=Inqu3ry&sslmode=disable", "Inqu3ry"},
		{"postgres://gw:zq#xv/yy@127.0.0.1:1/db", "zq#xv"},
	} {
		s, err := store.Open(ctx, tc.dsn)
		if err == nil {
			s.Close()
			t.Fatalf("%s opened", tc.dsn)
		}
		if strings.Contains(err.Error(), tc.secret) || strings.Contains(err.Error(), "xv/yy") {
			t.Errorf("Open(%s) = %v: shows the password", tc.dsn, err)
		}
	}
}

// TestWithdraw: messages withdrawn end failed with the reason, without a
// notice (their senders were answered already), and one delivered or
// failed before stays as it was.
func TestWithdraw(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, done := accept(t, s, 1), accept(t, s, 1), accept(t, s, 1)
		if err := s.Fail(ctx, done.ID, "refused by the carrier"); err != nil {
			t.Fatal(err)
		}
		if err := s.Withdraw(ctx, []int64{a.ID, b.ID, done.ID}, "refused at shutdown"); err != nil {
			t.Fatal(err)
		}
		for _, m := range []*store.Outbound{a, b, done} {
			state, why, err := s.MessageState(ctx, m.ID)
			want := "refused at shutdown"
			if m == done {
				want = "refused by the carrier"
			}
			if err != nil || state != "failed" || why != want {
				t.Errorf("message %d = %s %q, %v; want failed %q", m.ID, state, why, err, want)
			}
		}
		notices, err := store.Dump(s, `SELECT message_id FROM notices`)
		if err != nil || len(notices) != 1 || notices[0] != fmt.Sprint(done.ID) {
			t.Errorf("notices = %v, %v; want only %d's", notices, err, done.ID)
		}
		if got, err := s.ClaimOutbound(ctx, "i1", 10, time.Minute); err != nil || len(got) != 0 {
			t.Errorf("claimed after Withdraw: %d, %v", len(got), err)
		}
	})
}

// TestRaiseNotices: a message's notice raised anew once its first was
// sent, only for one with its outcome.
func TestRaiseNotices(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		done, pending := accept(t, s, 1), accept(t, s, 1)
		if err := s.Fail(ctx, done.ID, "refused by the carrier"); err != nil {
			t.Fatal(err)
		}
		ns, err := s.ClaimNotices(ctx, "i1", 10, time.Minute)
		if err != nil || len(ns) != 1 {
			t.Fatalf("ClaimNotices = %d, %v", len(ns), err)
		}
		if err := s.NoticesDone(ctx, []int64{done.ID}); err != nil {
			t.Fatal(err)
		}
		n, err := s.RaiseNotices(ctx, []int64{done.ID, pending.ID})
		if err != nil || n != 1 {
			t.Fatalf("RaiseNotices = %d, %v; want 1", n, err)
		}
		ns, err = s.ClaimNotices(ctx, "i2", 10, time.Minute)
		if err != nil || len(ns) != 1 || ns[0].ID != done.ID || ns[0].Error != "refused by the carrier" {
			t.Fatalf("claimed after RaiseNotices: %+v, %v", ns, err)
		}
		if n, err := s.RaiseNotices(ctx, []int64{done.ID}); err != nil || n != 0 {
			t.Errorf("RaiseNotices with its notice still there = %d, %v; want 0", n, err)
		}
	})
}

// TestOpenExclusiveNeedsWrites: serve's store refuses to open on a
// database that takes no writes (here a PostgreSQL user with read rights
// only), naming the cause, rather than start and fail every write later.
func TestOpenExclusiveNeedsWrites(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.StartPostgres(t)
	st, err := store.Open(ctx, dsn) // migrated by the owner
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, q := range []string{
		`CREATE ROLE reader LOGIN`,
		// Enough to find the schema migrated (CREATE TABLE IF NOT EXISTS
		// of the migrations' table), not to write.
		`GRANT USAGE, CREATE ON SCHEMA public TO reader`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader`,
	} {
		if err := store.Exec(st, q); err != nil {
			t.Fatal(err)
		}
	}
	ro := strings.Replace(dsn, "postgres://postgres@", "postgres://reader@", 1)
	_, err = store.OpenExclusive(ctx, ro)
	if err == nil || !strings.Contains(err.Error(), "the database takes no writes") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("OpenExclusive as a reader: %v", err)
	}
	// The owner's opens as before.
	own, err := store.OpenExclusive(ctx, dsn)
	if err != nil {
		t.Fatalf("OpenExclusive as the owner: %v", err)
	}
	own.Close()
}

// TestRefuseInbound: a message from a phone that its user's server
// refused ends failed, its text dropped; only its own user can do that.
func TestRefuseInbound(t *testing.T) {
	engines(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := &store.Inbound{Source: "+12015550199", Dest: "+12015550100", RecipientJID: "alice@example.com", Body: "unwanted"}
		if err := s.AcceptInbound(ctx, in); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.RefuseInbound(ctx, in.ID, "bob@example.com", "blocked"); err != nil || ok {
			t.Fatalf("RefuseInbound by another user = %v, %v", ok, err)
		}
		if ok, err := s.RefuseInbound(ctx, in.ID, "alice@example.com", "blocked"); err != nil || !ok {
			t.Fatalf("RefuseInbound = %v, %v", ok, err)
		}
		state, why, err := s.MessageState(ctx, in.ID)
		if err != nil || state != "failed" || why != "blocked" {
			t.Errorf("state %s %q, %v", state, why, err)
		}
		if body, err := s.MessageBody(ctx, in.ID); err != nil || body != "" {
			t.Errorf("body %q, %v; want it dropped", body, err)
		}
		if ok, err := s.RefuseInbound(ctx, in.ID, "alice@example.com", "blocked"); err != nil || ok {
			t.Errorf("RefuseInbound again = %v, %v", ok, err)
		}
	})
}
