package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"switchboard/store"
)

// TestAddFragmentsTogether: parts of messages from phones stored in one
// batch (set-based on PostgreSQL) come to what they do stored one after
// the other: each call sees the parts stored before it and its own, never
// a later one's (so of two parts completing a message together only the
// second finds it complete); a part sent again replaces the first copy,
// keeping when it came; a part of a message delivered already, sent again
// on another bind now down, is a resend; another message's part under a
// stored part's reference, count and sequence (another payload) is stored
// nowhere and returns the stored message's parts (it replaced them, and
// that message's text was lost).
func TestAddFragmentsTogether(t *testing.T) {
	engineStores(t, func(t *testing.T, open func() *store.Store) {
		a := addFragments(t, open(), true)
		b := addFragments(t, open(), false)
		if !slices.Equal(a, b) {
			t.Errorf("stored together:\n%s\none by one:\n%s", join(a), join(b))
		}
		want := []string{
			"0 A: 1@60000=x",
			"1 B: 1@0=b1 2@60000=b2",
			"2 A: 1@60000=x 2@60000=y",
			"3 resent",
			"4 C: 2@60000=arrow",
			"5 D: 1@60000=d",
			"6 clash D: 1@60000=d",
			"7 clash B: 1@0=b1 2@60000=b2",
			"8 D: 1@60000=d",
			"left: A1=x A2=y B1=b1 B2=b2 C2=arrow D1=d",
		}
		if !slices.Equal(a, want) {
			t.Errorf("stored together:\n%s\nwant:\n%s", join(a), join(want))
		}
	})
}

// addFragments stores a list of parts in one batch (together) or one by
// one, after a part and a reassembled message stored a minute before, and
// renders what each call returned and the parts left.
func addFragments(t *testing.T, s *store.Store, together bool) []string {
	t.Helper()
	ctx := context.Background()
	now := epoch
	store.SetClock(s, func() time.Time { return now })
	const phone, num = "+12015550199", "+12015550100"
	ended := func(session string) bool { return session != "gw/9" }
	key := func(ref int) store.FragmentKey {
		return store.FragmentKey{Source: phone, Dest: num, Ref: ref, Total: 2}
	}
	keys := map[store.FragmentKey]string{key(1): "A", key(2): "B", key(3): "C", key(4): "D"}
	part := func(k string, seq int, text, session string) store.Fragment {
		for fk, name := range keys {
			if name == k {
				return store.Fragment{FragmentKey: fk, Seq: seq, Payload: []byte(text), Text: text, Session: session, Ended: ended}
			}
		}
		panic(k)
	}
	if _, err := s.AddFragment(ctx, part("B", 1, "b1", "gw/1")); err != nil {
		t.Fatal(err)
	}
	// Message C was reassembled from "time's " and "arrow" on gw/1.
	kc := key(3)
	if err := s.AcceptInbound(ctx, &store.Inbound{Source: phone, Dest: num, RecipientJID: "alice@example.com", Body: "time's arrow",
		FragmentKey: &kc, Session: "gw/1", Ended: ended}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	fs := []store.Fragment{
		part("A", 1, "x", "gw/2"),
		part("B", 2, "b2", "gw/2"),
		part("A", 2, "y", "gw/2"),     // completes A
		part("C", 2, "arrow", "gw/2"), // C's again, after a new bind: a resend
		part("C", 2, "arrow", "gw/1"), // on C's own bind: someone writing it again
		part("D", 1, "d", "gw/2"),
		part("D", 1, "d'", "gw/2"),  // another message's first part, under D's reference: a clash
		part("B", 1, "b1'", "gw/2"), // the same under B's, stored before
		part("D", 1, "d", "gw/2"),   // D's first part again: replaces it, from when it first came
	}
	parts, errs := addEach(t, s, fs, together)
	render := func(ps []store.Fragment) string {
		var b []byte
		for _, p := range ps {
			b = fmt.Appendf(b, " %d@%d=%s", p.Seq, p.ReceivedAt.Sub(epoch).Milliseconds(), p.Payload)
		}
		return string(b)
	}
	var (
		out   []string
		clash *store.PartClash
	)
	for i, p := range parts {
		switch {
		case errs[i] == store.ErrResent:
			out = append(out, fmt.Sprintf("%d resent", i))
		case errors.As(errs[i], &clash):
			out = append(out, fmt.Sprintf("%d clash %s:%s", i, keys[fs[i].FragmentKey], render(clash.Parts)))
		case errs[i] != nil:
			t.Fatalf("part %d: %v", i, errs[i])
		default:
			out = append(out, fmt.Sprintf("%d %s:%s", i, keys[fs[i].FragmentKey], render(p)))
		}
	}
	groups, err := s.StaleFragments(ctx, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	left := "left:"
	for _, g := range groups {
		for _, p := range g {
			left += fmt.Sprintf(" %s%d=%s", keys[p.FragmentKey], p.Seq, p.Payload)
		}
	}
	return append(out, left)
}

// addEach adds fs in one batch (together) or by one AddFragment call each,
// and returns what each got.
func addEach(t *testing.T, s *store.Store, fs []store.Fragment, together bool) ([][]store.Fragment, []error) {
	t.Helper()
	if together {
		parts, errs, err := store.AddFragments(s, fs)
		if err != nil {
			t.Fatal(err)
		}
		return parts, errs
	}
	var (
		parts [][]store.Fragment
		errs  []error
	)
	for _, f := range fs {
		p, err := s.AddFragment(context.Background(), f)
		parts, errs = append(parts, p), append(errs, err)
	}
	return parts, errs
}

// TestPartAfterReassembly: in one batch, a message reassembled from its
// parts and, after it, a part with the same reference (a new message
// reusing it, or one of the parts sent again after a new bind) end as they
// do one after the other: the new message's part kept, the part sent again
// taken for a resend; not deleted with the parts of the message before.
func TestPartAfterReassembly(t *testing.T) {
	engineStores(t, func(t *testing.T, open func() *store.Store) {
		a, b := partAfterReassembly(t, open(), true), partAfterReassembly(t, open(), false)
		if !slices.Equal(a, b) {
			t.Errorf("together:\n%s\none by one:\n%s", join(a), join(b))
		}
		want := []string{"reused: 1", "resent: true", "left: K1=xy"}
		if !slices.Equal(a, want) {
			t.Errorf("together:\n%s\nwant:\n%s", join(a), join(want))
		}
	})
}

func partAfterReassembly(t *testing.T, s *store.Store, together bool) []string {
	t.Helper()
	ctx := context.Background()
	const phone, num = "+12015550199", "+12015550100"
	ended := func(session string) bool { return session == "gw/1" }
	k := store.FragmentKey{Source: phone, Dest: num, Ref: 5, Total: 2}
	l := store.FragmentKey{Source: phone, Dest: num, Ref: 6, Total: 2}
	for _, key := range []store.FragmentKey{k, l} {
		for seq, text := range []string{"ab", "cd"} {
			if _, err := s.AddFragment(ctx, store.Fragment{FragmentKey: key, Seq: seq + 1, Payload: []byte(text), Text: text, Session: "gw/1", Ended: ended}); err != nil {
				t.Fatal(err)
			}
		}
	}
	in := func(key store.FragmentKey) *store.Inbound {
		return &store.Inbound{Source: phone, Dest: num, RecipientJID: "alice@example.com", Body: "abcd", FragmentKey: &key, Session: "gw/1", Ended: ended}
	}
	reused := &store.FragmentCall{F: store.Fragment{FragmentKey: k, Seq: 1, Payload: []byte("xy"), Text: "xy", Session: "gw/2", Ended: ended}}
	resent := &store.FragmentCall{F: store.Fragment{FragmentKey: l, Seq: 1, Payload: []byte("ab"), Text: "ab", Session: "gw/2", Ended: ended}}
	ops := []any{in(k), reused, in(l), resent}
	if together {
		if err := store.RunMixed(s, ops); err != nil {
			t.Fatal(err)
		}
	} else if taken := oneByOne(t, s, ops); slices.Contains(taken, false) {
		t.Fatalf("messages refused one by one: %v", taken)
	}
	left := "left:"
	groups, err := s.StaleFragments(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		for _, p := range g {
			name := "K"
			if p.FragmentKey == l {
				name = "L"
			}
			left += fmt.Sprintf(" %s%d=%s", name, p.Seq, p.Payload)
		}
	}
	return []string{fmt.Sprint("reused: ", len(reused.Parts)), fmt.Sprint("resent: ", resent.Resent), left}
}

// TestPartBetweenTwoReassemblies: in one batch, a message reassembled with
// key K, then a part of K, then another message reassembled with K. One by
// one the part is stored after the first message and deleted by the
// second; together it must run between them too, not after both (where it
// was taken for a resend of the second message, or left behind once the
// second had deleted K's parts).
func TestPartBetweenTwoReassemblies(t *testing.T) {
	engineStores(t, func(t *testing.T, open func() *store.Store) {
		// The second message's bind has ended (gw/2: its message could
		// be a resend) or is up (gw/3).
		for _, second := range []string{"gw/2", "gw/3"} {
			a, b := partBetween(t, open(), true, second), partBetween(t, open(), false, second)
			if !slices.Equal(a, b) {
				t.Errorf("second message on %s:\ntogether:\n%s\none by one:\n%s", second, join(a), join(b))
			}
			if want := []string{"part resent: false, parts: 1", "left:"}; !slices.Equal(b, want) {
				t.Errorf("second message on %s, one by one:\n%s\nwant:\n%s", second, join(b), join(want))
			}
		}
	})
}

func partBetween(t *testing.T, s *store.Store, together bool, second string) []string {
	t.Helper()
	ctx := context.Background()
	const phone, num = "+12015550199", "+12015550100"
	if _, err := s.Bind(ctx, num, "alice@example.com", "sms"); err != nil {
		t.Fatal(err)
	}
	ended := func(session string) bool { return session != "gw/3" }
	k := store.FragmentKey{Source: phone, Dest: num, Ref: 5, Total: 2}
	in := func(body, session string) *store.Inbound {
		key := k
		return &store.Inbound{Source: phone, Dest: num, Body: body, FragmentKey: &key, Session: session, Ended: ended}
	}
	part := &store.FragmentCall{F: store.Fragment{FragmentKey: k, Seq: 1, Payload: []byte("ab"), Text: "ab", Session: "gw/1", Ended: ended}}
	ops := []any{in("cdef", "gw/3"), part, in("abcd", second)}
	if together {
		if err := store.RunMixed(s, ops); err != nil {
			t.Fatal(err)
		}
	} else if taken := oneByOne(t, s, ops); slices.Contains(taken, false) {
		t.Fatalf("messages refused one by one: %v", taken)
	}
	groups, err := s.StaleFragments(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	left := "left:"
	for _, g := range groups {
		for _, p := range g {
			left += fmt.Sprintf(" %d=%s", p.Seq, p.Payload)
		}
	}
	return []string{fmt.Sprint("part resent: ", part.Resent, ", parts: ", len(part.Parts)), left}
}

// oneByOne makes the calls ops holds (*store.Inbound, *store.FragmentCall)
// one after the other, as store.RunMixed makes them together: a part's
// result in its FragmentCall (ErrResent as Resent). It reports, per op,
// whether it was taken: false for a message refused (ErrNotFound).
func oneByOne(t *testing.T, s *store.Store, ops []any) []bool {
	t.Helper()
	ctx := context.Background()
	taken := make([]bool, len(ops))
	for i, o := range ops {
		switch o := o.(type) {
		case *store.Inbound:
			err := s.AcceptInbound(ctx, o)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			taken[i] = err == nil
		case *store.FragmentCall:
			parts, err := s.AddFragment(ctx, o.F)
			var clash *store.PartClash
			if errors.As(err, &clash) {
				parts, o.Clash = clash.Parts, true
			}
			o.Parts, o.Resent = parts, errors.Is(err, store.ErrResent)
			if err != nil && !o.Resent && !o.Clash {
				t.Fatal(err)
			}
			taken[i] = true
		default:
			t.Fatalf("op %d: %T", i, o)
		}
	}
	return taken
}

// TestAddFragmentOwned: a part marked Owned is stored only if a user has
// its number, looked up in its own transaction, alone or batched with
// others (where one without an owner takes nothing from the rest); a part
// not so marked is stored either way.
func TestAddFragmentOwned(t *testing.T) {
	engineStores(t, func(t *testing.T, open func() *store.Store) {
		for _, together := range []bool{true, false} {
			s := open()
			ctx := context.Background()
			const phone, alices, nobodys = "+12015550199", "+12015550100", "+12015550111"
			if _, err := s.Bind(ctx, alices, "alice@example.com", "operator"); err != nil {
				t.Fatal(err)
			}
			part := func(dest string, seq int, owned bool) store.Fragment {
				return store.Fragment{FragmentKey: store.FragmentKey{Source: phone, Dest: dest, Ref: 7, Total: 2}, Seq: seq,
					Payload: []byte(dest[len(dest)-3:] + "/" + strconv.Itoa(seq)), Owned: owned}
			}
			fs := []store.Fragment{part(alices, 1, true), part(nobodys, 1, true), part(nobodys, 2, false), part(alices, 2, true)}
			parts, errs := addEach(t, s, fs, together)
			var got []string
			for i := range fs {
				r := fmt.Sprint(len(parts[i]))
				if errs[i] != nil {
					if !errors.Is(errs[i], store.ErrNotFound) {
						t.Fatalf("part %d: %v", i, errs[i])
					}
					r = "nobody"
				}
				got = append(got, r)
			}
			groups, err := s.StaleFragments(ctx, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range groups {
				for _, p := range g {
					got = append(got, string(p.Payload))
				}
			}
			slices.Sort(got[len(fs):])
			if want := []string{"1", "nobody", "1", "2", "100/1", "100/2", "111/2"}; !slices.Equal(got, want) {
				t.Errorf("together %v: got %q, want %q", together, got, want)
			}
		}
	})
}
