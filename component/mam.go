package component

import (
	"context"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// nsMAM is XEP-0313: Message Archive Management.
const nsMAM = "urn:xmpp:mam:2"

// handleMAM answers an archive query. (Being implemented.)
func (c *Component) handleMAM(ctx context.Context, t xmlstream.TokenReadEncoder, s *inStanza, from jid.JID, q element) error {
	return c.iqError(t, s, errText(stanza.Cancel, stanza.FeatureNotImplemented, "The archive is not available yet."))
}

// handleMAMMetadata answers an archive metadata query. (Being implemented.)
func (c *Component) handleMAMMetadata(ctx context.Context, t xmlstream.TokenReadEncoder, s *inStanza, from jid.JID) error {
	return c.iqError(t, s, errText(stanza.Cancel, stanza.FeatureNotImplemented, "The archive is not available yet."))
}
