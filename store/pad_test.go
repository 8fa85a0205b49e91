package store

import (
	"slices"
	"testing"
)

func TestPad(t *testing.T) {
	for _, c := range []struct{ in, want []int64 }{
		{nil, nil},
		{[]int64{7}, []int64{7}},
		{[]int64{1, 2, 3}, []int64{1, 2, 3, 3}},
		{[]int64{1, 2, 3, 4, 5}, []int64{1, 2, 3, 4, 5, 5, 5, 5}},
		{[]int64{1, 2, 3, 4}, []int64{1, 2, 3, 4}},
	} {
		in := slices.Clone(c.in)
		if got := pad(in); !slices.Equal(got, c.want) {
			t.Errorf("pad(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("pad changed its argument to %v", in)
		}
	}
}

// TestPlaceholders: the lists of statement arguments, as both engines
// number them.
func TestPlaceholders(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{inList(1, 0), ""},
		{inList(1, 1), "$1"},
		{inList(9, 3), "$9, $10, $11"},
		{valuesList(1, 1), "($1)"},
		{valuesList(2, 3), "($1, $2, $3), ($4, $5, $6)"},
		{valuesFrom(99, 2, 1), "($99), ($100)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func BenchmarkPlaceholders(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = inList(3, 512)
		_ = valuesList(512, 6)
	}
}

// TestArgsFit: a statement with more arguments than SQLite takes is
// refused before the driver sees it.
func TestArgsFit(t *testing.T) {
	if err := argsFit(make([]any, maxArgs)); err != nil {
		t.Errorf("%d arguments: %v", maxArgs, err)
	}
	if err := argsFit(make([]any, maxArgs+1)); err == nil {
		t.Errorf("%d arguments: no error", maxArgs+1)
	}
}
