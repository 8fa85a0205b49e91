package coding

import "testing"

func TestPortAddressed(t *testing.T) {
	for _, c := range []struct {
		sm   []byte
		want bool
	}{
		{[]byte{0x06, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 'x'}, true},              // 16-bit ports (WAP push)
		{[]byte{0x04, 0x04, 0x02, 0x10, 0x20, 'x'}, true},                          // 8-bit ports
		{[]byte{0x0b, 0x00, 0x03, 0x2a, 0x02, 0x01, 0x05, 0x04, 0, 1, 0, 2}, true}, // after a concatenation IE
		{[]byte{0x05, 0x00, 0x03, 0x2a, 0x02, 0x01, 'x'}, false},                   // concatenation only
		{[]byte{0x03, 0x25, 0x01, 0x02, 'x'}, false},                               // a national language shift
		{[]byte{0x09, 0x00, 0x03}, false},                                          // malformed: no IE read past the end
		{nil, false},
	} {
		if got := PortAddressed(c.sm); got != c.want {
			t.Errorf("PortAddressed(% x) = %v, want %v", c.sm, got, c.want)
		}
	}
}
