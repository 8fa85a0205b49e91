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
