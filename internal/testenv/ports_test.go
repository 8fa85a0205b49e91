package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFreePortsDistinct: the ports of one call are all different, so a
// server never gets one port for two listeners.
func TestFreePortsDistinct(t *testing.T) {
	for range 200 {
		ports, err := freePorts(8)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d twice in %v", p, ports)
			}
			seen[p] = true
		}
	}
}

// TestFreePortsBelowEphemeral: the ports come from below the system's
// ephemeral range, where no outgoing connection takes them.
func TestFreePortsBelowEphemeral(t *testing.T) {
	lo, hi := quietPorts()
	if hi <= lo {
		t.Skip("no ephemeral range to stay below here")
	}
	ports, err := freePorts(16)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p < lo || p >= hi {
			t.Errorf("port %d outside [%d, %d)", p, lo, hi)
		}
	}
}

// TestOnFreshPorts: a start whose server logged that its port was taken
// (even one that returned nil, as Prosody's does) or that said so
// (errPortTaken) is undone and tried again; any other failure is returned
// at once; the third taken port ends the tries.
func TestOnFreshPorts(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "server.log")
	for _, tc := range []struct {
		name       string
		outcomes   []string // per try: "ok", "logged" (nil, port taken in the log), "said" (errPortTaken), "other"
		wantStarts int
		wantErr    bool
	}{
		{"first try", []string{"ok"}, 1, false},
		{"logged, then ok", []string{"logged", "ok"}, 2, false},
		{"said, then ok", []string{"said", "ok"}, 2, false},
		{"another failure", []string{"other", "ok"}, 1, true},
		{"taken three times", []string{"logged", "said", "logged", "ok"}, 3, true},
	} {
		starts, undos := 0, 0
		err := onFreshPorts(t, "server", logFile, "port in use", func() error {
			out := tc.outcomes[starts]
			starts++
			switch out {
			case "logged":
				return os.WriteFile(logFile, []byte("... port in use ..."), 0o644)
			case "said":
				return errPortTaken
			case "other":
				return errors.New("config error")
			}
			return nil
		}, func() { undos++ })
		if starts != tc.wantStarts || (err != nil) != tc.wantErr || undos != starts-btoi(err == nil) {
			t.Errorf("%s: %d starts, %d undone, error %v; want %d starts, error %v", tc.name, starts, undos, err, tc.wantStarts, tc.wantErr)
		}
		if _, statErr := os.Stat(logFile); err == nil && statErr == nil {
			t.Errorf("%s: the taken try's log was left for the next", tc.name)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
