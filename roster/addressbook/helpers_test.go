package addressbook_test

import (
	"encoding/base64"
	"strings"
)

// base64Fold encodes b as a vCard 3.0 writer does: 75-octet lines, folded
// with CRLF and a space.
func base64Fold(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(s) > 74 {
		sb.WriteString(s[:74])
		sb.WriteString("\r\n ")
		s = s[74:]
	}
	sb.WriteString(s)
	return sb.String()
}
