package bench

import (
	"strings"
	"testing"
)

// TestMOText: a message from a phone in several parts has the length the
// recorder checks, and one that arrives short is an error, not counted.
func TestMOText(t *testing.T) {
	for _, parts := range []int{1, 2, 3} {
		for _, j := range []int{0, 7, 12345} {
			text := moText(j, parts)
			if idx, ok := markerIndex([]byte(text), '#'); !ok || idx != j {
				t.Errorf("moText(%d, %d) = %q: marker %d, %v", j, parts, text, idx, ok)
			}
			// GSM 03.38, 153 characters a part when concatenated, 160 alone.
			if n := len(text); (parts == 1 && n > 160) || (parts > 1 && (n <= 153*(parts-1) || n > 153*parts)) {
				t.Errorf("moText(%d, %d) has %d characters: not %d parts", j, parts, n, parts)
			}
		}
	}
	rec := newRecorder(0, 2)
	rec.moLen = moLen(2)
	whole := moText(0, 2)
	rec.gotMO(0, []byte(whole), 1)
	rec.gotMO(1, []byte(whole[:153]), 2)
	if rec.nMO != 1 || rec.errors != 1 || !strings.Contains(rec.lastErr, "153 of its 253") {
		t.Errorf("one whole, one cut: counted %d, errors %d (%q); want 1, 1", rec.nMO, rec.errors, rec.lastErr)
	}
}
