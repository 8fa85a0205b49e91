package bench

import (
	"fmt"
	"testing"
)

// TestFormats checks the append forms against the fmt formats they replace:
// the bytes on the wire must not change.
func TestFormats(t *testing.T) {
	for _, i := range []int{0, 1, 9, 99, 899, 900, 7899, 7900, 7999, 8000, 8899, 19999, 123456} {
		k := i % 999
		checks := []struct{ got, want string }{
			{userNumber(k), fmt.Sprintf("+1201555%04d", 9000+k)},
			{phoneNumber(i), fmt.Sprintf("+1201555%04d", 100+i%8000)},
			{userJID(k), fmt.Sprintf("user%d@%s", k, UserDomain)},
			{body(i), fmt.Sprintf("bench #%d: a message of a typical length, sixty-odd characters.", i)},
			{string(appendMessage(nil, k, "a1b2c3", i, -1)), fmt.Sprintf("<message from='%s/r' to='%s@%s' id='%s' type='chat'><body>%s</body><request xmlns='urn:xmpp:receipts'/></message>",
				fmt.Sprintf("user%d@%s", k, UserDomain), fmt.Sprintf("+1201555%04d", 100+i%8000), CompDomain, "ba1b2c3-"+fmt.Sprint(i),
				fmt.Sprintf("bench #%d: a message of a typical length, sixty-odd characters.", i))},
			{string(appendMessage(nil, -1, "a1b2c3", i, -1)), fmt.Sprintf("<message to='%s@%s' id='%s' type='chat'><body>%s</body><request xmlns='urn:xmpp:receipts'/></message>",
				fmt.Sprintf("+1201555%04d", 100+i%8000), CompDomain, "ba1b2c3-"+fmt.Sprint(i),
				fmt.Sprintf("bench #%d: a message of a typical length, sixty-odd characters.", i))},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("got  %s\nwant %s", c.got, c.want)
			}
		}
		id := appendStanzaID(nil, "a1b2c3", i)
		if n, ok := stanzaIndex(id, "a1b2c3"); !ok || n != i {
			t.Errorf("stanzaIndex(%s) = %d, %v", id, n, ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { appendMessage(make([]byte, 0, 512), 5, "a1b2c3", 4321, 6) }); n > 1 {
		t.Errorf("appendMessage: %v allocations", n)
	}
}
