package failing

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestLog: a failure that repeats four times a second for ten minutes
// writes its first line, a reminder with the count after five minutes, and
// one line when it ends; a task that never failed writes nothing.
func TestLog(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	at := time.Unix(1_800_000_000, 0)
	l := &Log{now: func() time.Time { return at }}
	l.OK(log, "works again")
	if buf.Len() != 0 {
		t.Fatalf("OK without a failure logged %q", buf.String())
	}
	down := errors.New("connection refused")
	for range 2400 { // every 250 ms for 10 minutes
		l.Fail(log, down, "claiming messages failed")
		at = at.Add(250 * time.Millisecond)
	}
	l.OK(log, "claiming messages works again")
	l.OK(log, "claiming messages works again") // once only
	want := []string{
		`{"level":"error","error":"connection refused","message":"claiming messages failed"}`,
		`{"level":"error","error":"connection refused","failures":1201,"failing_for":"5m0s","message":"claiming messages failed"}`,
		`{"level":"info","failures":2400,"failing_for":"10m0s","message":"claiming messages works again"}`,
	}
	if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); !slices.Equal(got, want) {
		t.Errorf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
