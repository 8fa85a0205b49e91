package store_test

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"switchboard/store"
)

// TestMixedBatchesMatchOneByOne runs random batches of messages from phones
// and SMS parts through one group commit, and the same calls one by one on
// another store, and compares every call's result and the rows they leave
// (messages, notices, parts waiting). Two phones, three numbers (two with
// owners), binds ended, up or unnamed, resends, and references reused.
func TestMixedBatchesMatchOneByOne(t *testing.T) {
	def := 12
	if testing.Short() {
		def = 3
	}
	seeds := int64(envRounds(def))
	engineStores(t, func(t *testing.T, open func() *store.Store) {
		for seed := int64(1); seed <= seeds; seed++ {
			a, b := open(), open()
			diff := mixedRun(t, seed, a, b)
			a.Close() // at once: PostgreSQL's connections are few
			b.Close()
			if diff != "" {
				t.Fatalf("seed %d: %s", seed, diff)
			}
		}
	})
}

const (
	mxAlice, mxA, mxBob, mxB, mxX = "alice@example.com", "+12015550100", "bob@example.com", "+12015550101", "+12015550177"
	mxP1, mxP2                    = "+12015550201", "+12015550202"
)

func mxEnded(s string) bool { return s == "gw/1" || s == "gw/2" }

type mxOp struct {
	in   *store.Inbound
	frag *store.Fragment
}

func mxGen(r *rand.Rand) mxOp {
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	src, dst := pick(mxP1, mxP2), pick(mxA, mxA, mxB, mxX)
	key := store.FragmentKey{Source: src, Dest: dst, Ref: 1 + r.Intn(2), Total: 2}
	session := pick("gw/1", "gw/2", "gw/3", "")
	if r.Intn(2) == 0 {
		t := pick("ab", "cd")
		return mxOp{frag: &store.Fragment{FragmentKey: key, Seq: 1 + r.Intn(2), Payload: []byte(t), Text: t, Session: session, Ended: mxEnded}}
	}
	in := &store.Inbound{Source: src, Dest: dst, Body: pick("ab", "cd", "abcd", "cdab"), Session: session, Ended: mxEnded}
	if r.Intn(2) == 0 {
		in.FragmentKey = &key
	}
	if r.Intn(5) == 0 && dst != mxX {
		in.RecipientJID = map[string]string{mxA: mxAlice, mxB: mxBob}[dst]
	}
	return mxOp{in: in}
}

// mxCalls makes fresh calls of ops, for store.RunMixed or oneByOne.
func mxCalls(ops []mxOp) []any {
	calls := make([]any, len(ops))
	for i, o := range ops {
		if o.in == nil {
			calls[i] = &store.FragmentCall{F: *o.frag}
			continue
		}
		c := *o.in
		if o.in.FragmentKey != nil {
			k := *o.in.FragmentKey
			c.FragmentKey = &k
		}
		calls[i] = &c
	}
	return calls
}

// mxResults renders each call's result, the messages by their order in s.
func mxResults(t *testing.T, s *store.Store, calls []any, taken []bool) []string {
	t.Helper()
	ids := mxIDs(t, s)
	out := make([]string, len(calls))
	for i, c := range calls {
		switch c := c.(type) {
		case *store.Inbound:
			out[i] = mxInResult(c, ids, taken[i])
		case *store.FragmentCall:
			out[i] = mxFragResult(c.Parts, c.Resent, c.Clash)
		}
	}
	return out
}

func mixedRun(t *testing.T, seed int64, together, alone *store.Store) string {
	ctx := context.Background()
	r := rand.New(rand.NewSource(seed))
	now := epoch
	for _, s := range []*store.Store{together, alone} {
		store.SetClock(s, func() time.Time { return now })
		s.HandNotices("i1", time.Minute, func([]store.Notice) {})
		for n, j := range map[string]string{mxA: mxAlice, mxB: mxBob} {
			if _, err := s.Bind(ctx, n, j, "sms"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for round := range 12 {
		n := 1 + r.Intn(16)
		ops := make([]mxOp, n)
		for i := range ops {
			ops[i] = mxGen(r)
		}

		tCalls := mxCalls(ops)
		if err := store.RunMixed(together, tCalls); err != nil {
			t.Fatal(err)
		}
		// Together, a message was refused when it came to no recipient
		// and was no resend.
		tTaken := make([]bool, n)
		for i, c := range tCalls {
			in, ok := c.(*store.Inbound)
			tTaken[i] = !ok || in.RecipientJID != "" || in.Duplicate
		}
		aCalls := mxCalls(ops)
		aTaken := oneByOne(t, alone, aCalls)
		tRes, aRes := mxResults(t, together, tCalls, tTaken), mxResults(t, alone, aCalls, aTaken)

		ts, as := mxState(t, together), mxState(t, alone)
		if !slices.Equal(tRes, aRes) || !slices.Equal(ts, as) {
			var b strings.Builder
			fmt.Fprintf(&b, "round %d\nops:\n", round)
			for i, o := range ops {
				if o.in != nil {
					fmt.Fprintf(&b, "  %d in %s->%s %q session %q key %v recipient %q\n", i, o.in.Source, o.in.Dest, o.in.Body, o.in.Session, o.in.FragmentKey, o.in.RecipientJID)
				} else {
					fmt.Fprintf(&b, "  %d part %v seq %d %q session %q\n", i, o.frag.FragmentKey, o.frag.Seq, o.frag.Payload, o.frag.Session)
				}
			}
			fmt.Fprintf(&b, "together:\n  %s\n  %s\none by one:\n  %s\n  %s\n",
				strings.Join(tRes, "\n  "), strings.Join(ts, "\n  "), strings.Join(aRes, "\n  "), strings.Join(as, "\n  "))
			return b.String()
		}
		now = now.Add(time.Duration(r.Intn(3)) * time.Minute)
	}
	return ""
}

// mxIDs numbers the messages from phones in id order (the two stores'
// ids may differ).
func mxIDs(t *testing.T, s *store.Store) map[int64]int {
	t.Helper()
	rows, err := store.Dump(s, `SELECT id FROM messages WHERE direction = 'in' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[int64]int)
	for i, row := range rows {
		var id int64
		if _, err := fmt.Sscan(row, &id); err != nil {
			t.Fatal(err)
		}
		m[id] = i
	}
	return m
}

func mxInResult(in *store.Inbound, ids map[int64]int, found bool) string {
	if !found {
		return "message refused"
	}
	return fmt.Sprintf("message #%d duplicate %v recipient %s", ids[in.ID], in.Duplicate, in.RecipientJID)
}

func mxFragResult(parts []store.Fragment, resent, clash bool) string {
	if resent {
		return "part resent"
	}
	var b strings.Builder
	if clash {
		b.WriteString("clash, ")
	}
	b.WriteString("parts:")
	for _, p := range parts {
		fmt.Fprintf(&b, " %d=%s@%d", p.Seq, p.Payload, p.ReceivedAt.UnixMilli())
	}
	return b.String()
}

func mxState(t *testing.T, s *store.Store) []string {
	t.Helper()
	msgs, err := store.Dump(s, `SELECT user_jid || '|' || user_number || '|' || peer_number || '|' || body || '|' || smpp_session || '|' || frag_key || '|' || CAST(created_at AS TEXT)
		FROM messages WHERE direction = 'in' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	notices, err := store.Dump(s, `SELECT count(*) FROM notices`)
	if err != nil {
		t.Fatal(err)
	}
	frags, err := store.Dump(s, `SELECT source || '|' || dest || '|' || CAST(ref AS TEXT) || '|' || CAST(seq AS TEXT) || '|' || CAST(received_at AS TEXT)
		FROM fragments ORDER BY source, dest, ref, total, seq`)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]string{"messages:"}, msgs...)
	out = append(out, "notices: "+strings.Join(notices, ","), "parts waiting:")
	return append(out, frags...)
}
