package jidcache

import (
	"fmt"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"
)

// inputs are addresses of every kind Parse meets, valid and not.
var inputs = []string{
	"alice@example.com", "alice@example.com/phone", "Alice@Example.COM/Phone",
	"+12015550123@sms.example.com", "sms.example.com", "example.com/res",
	"bob@[::1]", "bob@127.0.0.1/x", "üser@bücher.example/ресурс", "a@b.c/d@e/f",
	"", "@example.com", "alice@", "alice@example.com/", "a b@example.com", "alice@exa mple.com",
	"alice@example.com/\u0000", "\uFFFDalice@example.com",
}

// TestParseAsJIDParse: the cache answers what jid.Parse answers, the first
// time and from the cache, and keeps only what parses.
func TestParseAsJIDParse(t *testing.T) {
	c := New(100, jid.Parse)
	valid := 0
	for round := range 2 {
		for _, s := range inputs {
			want, wantErr := jid.Parse(s)
			got, err := c.Parse(s)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("round %d: Parse(%q) error %v, jid.Parse's %v", round, s, err, wantErr)
			}
			if err == nil && (!got.Equal(want) || got.String() != want.String()) {
				t.Fatalf("round %d: Parse(%q) = %q, jid.Parse %q", round, s, got, want)
			}
			if round == 0 && wantErr == nil {
				valid++
			}
		}
	}
	if c.len() != valid {
		t.Errorf("the cache holds %d JIDs; %d of the inputs parse", c.len(), valid)
	}
	if valid == 0 || valid == len(inputs) {
		t.Fatalf("%d of %d inputs parse: the test needs both kinds", valid, len(inputs))
	}
}

// TestBounded: the cache never holds more than its bound, and still
// answers rightly after it starts again.
func TestBounded(t *testing.T) {
	calls := 0
	c := New(10, func(s string) (jid.JID, error) { calls++; return jid.Parse(s) })
	for i := range 25 {
		s := fmt.Sprintf("u%d@example.com", i)
		j, err := c.Parse(s)
		if err != nil || j.String() != s {
			t.Fatalf("Parse(%q) = %q, %v", s, j, err)
		}
		if c.len() > 10 {
			t.Fatalf("holds %d after %d addresses; bound 10", c.len(), i+1)
		}
	}
	before := calls
	if _, err := c.Parse("u24@example.com"); err != nil || calls != before {
		t.Errorf("the last address parsed again (%d calls, %v)", calls-before, err)
	}
}

// TestConcurrent: many goroutines parsing and deriving JIDs from the same
// cached values (under -race: a shared JID is only read).
func TestConcurrent(t *testing.T) {
	c := New(16, jid.Parse)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				s := fmt.Sprintf("u%d@example.com/r%d", (g+i)%40, i%3)
				j, err := c.Parse(s)
				if err != nil || j.String() != s {
					t.Errorf("Parse(%q) = %q, %v", s, j, err)
					return
				}
				if b := j.Bare().String(); b != fmt.Sprintf("u%d@example.com", (g+i)%40) {
					t.Errorf("Bare of %q = %q", s, b)
					return
				}
				if w, _ := j.WithResource("other"); w.Resourcepart() != "other" || j.Resourcepart() != fmt.Sprintf("r%d", i%3) {
					t.Errorf("WithResource changed the cached %q", s)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkParse(b *testing.B) {
	const s = "alice@example.com/phone-7f3a"
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := Parse(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jid.Parse", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := jid.Parse(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
