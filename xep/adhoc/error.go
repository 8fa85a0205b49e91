package adhoc

import (
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

// The specific error conditions of XEP-0050 §4.6, children of <error/>
// after the general one.
const (
	MalformedAction = "malformed-action" // the action is not one XEP-0050 defines
	BadAction       = "bad-action"       // the action is not offered at this stage
	BadLocale       = "bad-locale"
	BadPayload      = "bad-payload"
	BadSessionID    = "bad-sessionid"   // no such session
	SessionExpired  = "session-expired" // the session has ended
)

// Failure is a command error: a stanza error with one of the specific
// conditions above. (Error is a note type.)
type Failure struct {
	Stanza   stanza.Error
	Specific string
}

// Fail is the error for specific, with the type and general condition
// XEP-0050 §4.6 pairs it with, and text for the user.
func Fail(specific, text string) Failure {
	typ, cond := stanza.Modify, stanza.BadRequest
	if specific == SessionExpired {
		typ, cond = stanza.Cancel, stanza.NotAllowed
	}
	return Failure{Stanza: stanza.Error{Type: typ, Condition: cond, Text: map[string]string{"": text}}, Specific: specific}
}

// TokenReader is the <error/> element, the specific condition after the
// text (RFC 6120 §8.3.2).
func (e Failure) TokenReader() xml.TokenReader {
	var specific xml.TokenReader
	if e.Specific != "" {
		specific = xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NS, Local: e.Specific}})
	}
	return e.Stanza.Wrap(specific)
}

func (e Failure) Error() string { return e.Stanza.Error() }

// Unwrap returns the stanza error, for errors.As and errors.Is.
func (e Failure) Unwrap() error { return e.Stanza }
