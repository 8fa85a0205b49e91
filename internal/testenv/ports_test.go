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
