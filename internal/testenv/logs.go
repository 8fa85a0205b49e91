package testenv

import (
	"encoding/json"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// Logs is a zerolog JSON output for a test to read back: give it to
// zerolog.New. Each line goes to the test's log as it comes, decoded to
// Lines (and so to Next) while the channel has room for it, and is counted
// by its message (Count). A line that is not a JSON object fails the test.
type Logs struct {
	t     testing.TB
	w     io.Writer
	lines chan map[string]any

	mu    sync.Mutex
	count map[string]int
}

// NewLogs returns an output that keeps up to 1024 lines unread.
func NewLogs(t testing.TB) *Logs {
	return &Logs{t: t, w: zerolog.NewTestWriter(t), lines: make(chan map[string]any, 1024), count: make(map[string]int)}
}

func (l *Logs) Write(p []byte) (int, error) {
	var line map[string]any
	if err := json.Unmarshal(p, &line); err != nil {
		l.t.Errorf("log line %q: %v", p, err)
		return l.w.Write(p)
	}
	msg, _ := line["message"].(string)
	l.mu.Lock()
	l.count[msg]++
	l.mu.Unlock()
	select {
	case l.lines <- line:
	default:
	}
	return l.w.Write(p)
}

// Lines is the lines not read yet, decoded, for a test that waits on
// other things too.
func (l *Logs) Lines() <-chan map[string]any { return l.lines }

// Next returns the next line whose message is want, failing the test on a
// line whose message is one of not before it, or on none within five
// seconds.
func (l *Logs) Next(want string, not ...string) map[string]any {
	l.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case line := <-l.lines:
			msg, _ := line["message"].(string)
			if msg == want {
				return line
			}
			if slices.Contains(not, msg) {
				l.t.Fatalf("logged %v, want %q", line, want)
			}
		case <-timeout:
			l.t.Fatalf("nothing logged %q", want)
			return nil
		}
	}
}

// Count is how many lines said msg so far.
func (l *Logs) Count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[msg]
}
