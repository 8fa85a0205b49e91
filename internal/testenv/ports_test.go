package testenv

import "testing"

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
