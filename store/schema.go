package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// migrations are applied in order, each once, recorded in schema_migrations.
// Types are spelled with placeholders replaced per engine: {{id}} an
// auto-increment primary key, {{idref}} a column holding one (on SQLite the
// rowid when it is the primary key), {{bytes}} a byte string, {{now_ms}}
// the time of the migration in ms.
var migrations = []string{
	`CREATE TABLE bindings (
		number      TEXT PRIMARY KEY,
		jid         TEXT NOT NULL UNIQUE,
		method      TEXT NOT NULL,
		verified_at BIGINT NOT NULL
	);
	CREATE TABLE messages (
		id              {{id}},
		direction       TEXT NOT NULL,
		route           TEXT NOT NULL,
		state           TEXT NOT NULL,
		user_jid        TEXT NOT NULL,
		user_number     TEXT NOT NULL,
		peer_number     TEXT NOT NULL,
		stanza_id       TEXT NOT NULL DEFAULT '',
		want_receipt    SMALLINT NOT NULL DEFAULT 0,
		body            TEXT NOT NULL,
		parts           INTEGER NOT NULL DEFAULT 0,
		attempts        INTEGER NOT NULL DEFAULT 0,
		next_attempt_at BIGINT NOT NULL DEFAULT 0,
		expires_at      BIGINT NOT NULL DEFAULT 0,
		lease_owner     TEXT NOT NULL DEFAULT '',
		lease_until     BIGINT NOT NULL DEFAULT 0,
		error           TEXT NOT NULL DEFAULT '',
		notify          SMALLINT NOT NULL DEFAULT 0,
		created_at      BIGINT NOT NULL,
		updated_at      BIGINT NOT NULL
	);
	CREATE INDEX messages_work ON messages (state, next_attempt_at);
	CREATE INDEX messages_notify ON messages (notify);
	CREATE TABLE parts (
		message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
		seq        INTEGER NOT NULL,
		smsc_id    TEXT NOT NULL DEFAULT '',
		state      TEXT NOT NULL,
		err        TEXT NOT NULL DEFAULT '',
		updated_at BIGINT NOT NULL,
		PRIMARY KEY (message_id, seq)
	);
	CREATE INDEX parts_smsc_id ON parts (smsc_id);
	CREATE TABLE early_receipts (
		smsc_id     TEXT PRIMARY KEY,
		state       TEXT NOT NULL,
		err         TEXT NOT NULL DEFAULT '',
		received_at BIGINT NOT NULL
	);
	CREATE TABLE fragments (
		source      TEXT NOT NULL,
		dest        TEXT NOT NULL,
		ref         INTEGER NOT NULL,
		total       INTEGER NOT NULL,
		seq         INTEGER NOT NULL,
		data_coding SMALLINT NOT NULL,
		payload     {{bytes}} NOT NULL,
		received_at BIGINT NOT NULL,
		PRIMARY KEY (source, dest, ref, total, seq)
	);`,
	`CREATE TABLE verifications (
		jid        TEXT PRIMARY KEY,
		number     TEXT NOT NULL,
		code_hash  {{bytes}} NOT NULL,
		salt       {{bytes}} NOT NULL,
		tries      INTEGER NOT NULL DEFAULT 0,
		expires_at BIGINT NOT NULL,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE code_sends (
		id      {{id}},
		number  TEXT NOT NULL,
		jid     TEXT NOT NULL,
		sent_at BIGINT NOT NULL
	);
	CREATE INDEX code_sends_number ON code_sends (number, sent_at);
	CREATE INDEX code_sends_jid ON code_sends (jid, sent_at);
	CREATE INDEX code_sends_at ON code_sends (sent_at);
	CREATE TABLE command_sessions (
		id         TEXT PRIMARY KEY,
		jid        TEXT NOT NULL,
		node       TEXT NOT NULL,
		stage      INTEGER NOT NULL,
		data       TEXT NOT NULL DEFAULT '',
		expires_at BIGINT NOT NULL
	);`,
	// Routing over XMPP and the archive.
	`ALTER TABLE messages ADD COLUMN user_bare TEXT NOT NULL DEFAULT '';
	ALTER TABLE messages ADD COLUMN peer_jid TEXT NOT NULL DEFAULT '';
	ALTER TABLE messages ADD COLUMN extra TEXT NOT NULL DEFAULT '';
	ALTER TABLE messages ADD COLUMN fallback SMALLINT NOT NULL DEFAULT 0;
	CREATE INDEX messages_user ON messages (user_bare, peer_number, id);
	CREATE INDEX messages_peer ON messages (peer_jid, user_number, id);
	CREATE INDEX messages_relay ON messages (route, user_number, peer_number, stanza_id);
	CREATE TABLE user_settings (
		jid            TEXT PRIMARY KEY,
		fallback       SMALLINT NOT NULL,
		fallback_after BIGINT NOT NULL
	);`,
	// Address books.
	`CREATE TABLE contacts (
		owner      TEXT NOT NULL,
		number     TEXT NOT NULL,
		name       TEXT NOT NULL DEFAULT '',
		photo      {{bytes}},
		photo_type TEXT NOT NULL DEFAULT '',
		added_at   BIGINT NOT NULL,
		deleted    SMALLINT NOT NULL DEFAULT 0,
		dirty      SMALLINT NOT NULL DEFAULT 1,
		PRIMARY KEY (owner, number)
	);
	CREATE INDEX contacts_number ON contacts (number);
	CREATE INDEX contacts_dirty ON contacts (dirty);
	CREATE TABLE lookups (
		owner  TEXT NOT NULL,
		number TEXT NOT NULL,
		at     BIGINT NOT NULL,
		PRIMARY KEY (owner, number)
	);
	CREATE INDEX lookups_at ON lookups (owner, at);`,
	// SMS quotas.
	`CREATE INDEX messages_sms_quota ON messages (user_bare, created_at);
	CREATE INDEX messages_created ON messages (created_at);`,
	// A partial index: only messages relayed over XMPP are in the relay
	// index, so a message sent as SMS writes one index entry less. Queries
	// repeat the index's condition word for word (SQLite uses a partial index
	// only then).
	`DROP INDEX messages_relay;
	CREATE INDEX messages_relay ON messages (user_number, peer_number, stanza_id) WHERE peer_jid <> '';`,
	// The same for the archive's index of messages relayed to a user.
	`DROP INDEX messages_peer;
	CREATE INDEX messages_peer ON messages (peer_jid, user_number, id) WHERE peer_jid <> '';`,
	// Notices: only messages with a notice pending or leased are indexed, so
	// a message at rest costs no entry. Queries repeat the condition.
	`DROP INDEX messages_notify;
	CREATE INDEX messages_notify ON messages (notify, id) WHERE notify <> 0;`,
	// Notices in a table of their own: a row while a notice waits to be
	// sent (lease_until 0) or is being sent (leased to lease_owner until
	// lease_until), deleted once sent. Raising and ending a notice no
	// longer rewrites the message's row: on PostgreSQL that update could
	// not be HOT and wrote an entry in every index of messages. The
	// messages.notify column stays, always 0.
	`CREATE TABLE notices (
		message_id  {{idref}} PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
		lease_owner TEXT NOT NULL DEFAULT '',
		lease_until BIGINT NOT NULL DEFAULT 0
	);
	CREATE INDEX notices_due ON notices (lease_until);
	INSERT INTO notices (message_id, lease_owner, lease_until)
		SELECT id, CASE WHEN notify = 2 THEN lease_owner ELSE '' END, CASE WHEN notify = 2 THEN lease_until ELSE 0 END
		FROM messages WHERE notify <> 0;
	UPDATE messages SET notify = 0 WHERE notify <> 0;
	DROP INDEX messages_notify;`,
	// Quotas that cost the same at any traffic. The global per-minute
	// limit counted every SMS of the last minute in messages, once per
	// batch of the router: with the limits raised for a busy gateway, at a
	// paced 1,000 msg/s on SQLite, that took the CPU per 1,000 messages
	// from 0.57 to 0.91 s and the p99 XMPP → submit_sm from 12 to 39 ms.
	// Everyone's SMS are now added up per second in sms_seconds (at most
	// 61 rows to read; at, a unix second, is the rowid on SQLite). A
	// user's are read from an index of SMS only, which covers the count on
	// SQLite and is bounded by the user's own limits, not by how much they
	// chat over XMPP. The count starts empty: for the first minute after
	// this migration the global limit sees only the SMS sent since.
	`CREATE TABLE sms_seconds (
		at {{idref}} PRIMARY KEY,
		n  BIGINT NOT NULL
	);
	DROP INDEX messages_sms_quota;
	CREATE INDEX messages_sms_quota ON messages (user_bare, created_at) WHERE direction = 'out' AND route = 'sms';`,
	// The archive's indexes hold only archived messages (with a body,
	// from a number), and the id and time a query narrows by, so a page
	// is read from them (see archiveSet) instead of from every row.
	`DROP INDEX messages_user;
	CREATE INDEX messages_user ON messages (user_bare, peer_number, id, created_at) WHERE body <> '' AND user_number LIKE '+%';
	DROP INDEX messages_peer;
	CREATE INDEX messages_peer ON messages (peer_jid, user_number, id, created_at) WHERE peer_jid <> '' AND body <> '' AND user_number LIKE '+%';`,
	// Users' presence, as the XMPP server forwards it under the presence
	// privilege (XEP-0356), shared by the instances: ejabberd spreads a
	// component's stanzas over its connections, so one user's presence
	// may reach one instance and their going offline another. A row per
	// resource; available 0 is a tombstone (kept a while, see Sweep), so
	// a late write of an older change does not undo a newer one. at is
	// when the gateway read the change, in ms.
	`CREATE TABLE presences (
		jid       TEXT NOT NULL,
		resource  TEXT NOT NULL,
		available SMALLINT NOT NULL,
		at        BIGINT NOT NULL,
		PRIMARY KEY (jid, resource)
	);`,
	// Messages from phones name the SMPP bind that carried them (and, when
	// reassembled, the parts' reference and count), and are indexed by
	// phone, so a resend after a new bind is recognised (see
	// Inbound.Duplicate and ErrResent).
	`ALTER TABLE messages ADD COLUMN smpp_session TEXT NOT NULL DEFAULT '';
	ALTER TABLE messages ADD COLUMN frag_key TEXT NOT NULL DEFAULT '';
	CREATE INDEX messages_from_phone ON messages (peer_number, user_number, created_at) WHERE direction = 'in';`,
	// The latest privileges (XEP-0356) each server domain advertised, shared
	// by the instances: ejabberd addresses the advertisement to the
	// component's domain, so it may reach another instance than the one
	// that connected. at in ms.
	`CREATE TABLE grants (
		domain   TEXT PRIMARY KEY,
		ns       TEXT NOT NULL,
		roster   TEXT NOT NULL,
		message  TEXT NOT NULL,
		presence TEXT NOT NULL,
		at       BIGINT NOT NULL
	);`,
	// A user's SMS counted in sms_user_counts, a row per user per batch,
	// instead of read from an index of messages. Every SMS wrote an entry
	// in messages_sms_quota, keyed by user, so a batch of SMS from many
	// users dirtied a page of it per user; and it was kept whether or not
	// a limit per user was set, while these rows are written only then
	// (see CountSMSPerUser). Saturated on SQLite, eight alternating pairs:
	// WAL written per message 5.8 to 4.4 KB, CPU per message -4.9 %; with
	// the limits on, the same CPU as before. Rows are only inserted, never
	// updated, so instances take no lock on each other's. at is when the
	// SMS were counted, in ms: their accept, or a relay's fallback to SMS.
	// The SMS of the last day (the day limit's window) carry over from the
	// index.
	`CREATE TABLE sms_user_counts (
		user_bare TEXT NOT NULL,
		at        BIGINT NOT NULL,
		n         INTEGER NOT NULL
	);
	CREATE INDEX sms_user_counts_user ON sms_user_counts (user_bare, at, n);
	CREATE INDEX sms_user_counts_at ON sms_user_counts (at);
	INSERT INTO sms_user_counts (user_bare, at, n)
		SELECT user_bare, created_at, count(*) FROM messages
		WHERE direction = 'out' AND route = 'sms' AND created_at >= {{now_ms}} - 86400000
		GROUP BY user_bare, created_at;
	DROP INDEX messages_sms_quota;`,
	// Relays with no SMS fallback to wait for end as sent (see
	// StateSent). They stayed relayed, counted as on their way by the
	// queue gauge and never pruned, when no receipt came.
	`UPDATE messages SET state = 'sent' WHERE state = 'relayed' AND next_attempt_at = 0`,
	// A submitted message's next_attempt_at holds since when it waits for
	// its receipts (see EndReceiptWaits): for those submitted before, the
	// time of their last change.
	`UPDATE messages SET next_attempt_at = updated_at WHERE state = 'submitted'`,
	// Each marking of a contact for the roster worker changes its mark, so
	// the worker, recording what it pushed, leaves marked again a contact
	// marked while it pushed (a rebind), instead of matching on the name.
	`ALTER TABLE contacts ADD COLUMN mark BIGINT NOT NULL DEFAULT 0`,
	// Replies to short codes (see ShortCodeWrote). A message from a phone
	// records how its SMSC addressed the sender (SMPP type of number and
	// numbering plan) and which SMSC carried it (its name; '' the
	// default), and so do the parts of one waiting for the rest; an SMS
	// to a short code carries the same, so that it goes back the way the
	// short code came. Other SMS leave them 0 and '' (an E.164 number goes
	// as TON 1 / NPI 1, to the SMSC its prefix picks). The lookup reads
	// messages_from_phone.
	`ALTER TABLE messages ADD COLUMN peer_ton SMALLINT NOT NULL DEFAULT 0;
	ALTER TABLE messages ADD COLUMN peer_npi SMALLINT NOT NULL DEFAULT 0;
	ALTER TABLE messages ADD COLUMN smsc TEXT NOT NULL DEFAULT '';
	ALTER TABLE fragments ADD COLUMN source_ton SMALLINT NOT NULL DEFAULT 0;
	ALTER TABLE fragments ADD COLUMN source_npi SMALLINT NOT NULL DEFAULT 0;
	ALTER TABLE fragments ADD COLUMN smsc TEXT NOT NULL DEFAULT ''`,
	// The instances connected to the XMPP server, each seen every few
	// seconds while it is (see InstanceSeen): `check` opens no second
	// component connection beside a running one.
	`CREATE TABLE instances (
		name    TEXT PRIMARY KEY,
		seen_at BIGINT NOT NULL
	)`,
	// Answers from the form of a number the user wrote to. A number has
	// several JIDs (12015550123@, +1-201-555-0123@, a national number);
	// clients show each as a conversation of its own, so a receipt, an
	// error or a reply from the international form, to a user who wrote
	// to another, came into a conversation they never opened. A message
	// keeps the localpart it was written to, or from a phone was sent
	// from, in peer_local ('' the international form, as for every message
	// before: the common case writes nothing more). peer_forms holds, for
	// a user and a number, the form they last wrote to it in, only when
	// that is not the international one: a row is written when the form
	// changes and deleted when they write to the international form
	// again, and a phone's message is stored with it (see AcceptInbound).
	// bindings.forms is 1 once the user has had a row there (and set again
	// from peer_forms when they bind a number): the routing of a batch
	// reads their binding anyway, and reads peer_forms only for users so
	// marked (see RoutingOf), so the common case costs no read.
	`ALTER TABLE messages ADD COLUMN peer_local TEXT NOT NULL DEFAULT '';
	CREATE TABLE peer_forms (
		user_bare TEXT NOT NULL,
		number    TEXT NOT NULL,
		local     TEXT NOT NULL,
		PRIMARY KEY (user_bare, number)
	);
	ALTER TABLE bindings ADD COLUMN forms SMALLINT NOT NULL DEFAULT 0`,
	// The work index holds only the messages still at work: not those
	// delivered or sent, which are nearly all of them and only ever read
	// by id. Queries repeat the condition, inWork, word for word. It had
	// an entry per message ever kept, and every message's last update
	// moved its entry, where it now only deletes it.
	`DROP INDEX messages_work;
	CREATE INDEX messages_work ON messages (state, next_attempt_at) WHERE state NOT IN ('delivered', 'sent')`,
	// The XMPP stanza error condition a failure calls for, beside its
	// human text ('' the default, recipient-unavailable): a relay whose
	// SMS fallback the limits refused gets policy-violation. It was read
	// from a phrase in the text. Failures whose notice waits keep theirs.
	`ALTER TABLE messages ADD COLUMN error_condition TEXT NOT NULL DEFAULT '';
	UPDATE messages SET error_condition = 'policy-violation'
		WHERE id IN (SELECT message_id FROM notices) AND route = 'xmpp' AND state = 'failed' AND error LIKE '%the SMS limits refused it as SMS%'`,
	// The roster worker reads the dirty contacts in key order, a batch at
	// a time (DirtyContacts). From an index of the flag alone, each batch
	// sorted every dirty row to take the first 500; this one holds only
	// the dirty, in that order (a push after a 10,000-contact upload on
	// SQLite: 376–400 ms before, 239–285 ms after).
	`DROP INDEX contacts_dirty;
	CREATE INDEX contacts_dirty ON contacts (owner, number) WHERE dirty = 1`,
	// Whether a dirty contact's roster item changed (new, renamed, gone),
	// beside dirty, which a change of its presence alone sets too (a number
	// registered or released): only a changed item is pushed again, for a
	// push undid the name and group the user gave the item, and put back
	// one the user had removed. Those clean now were pushed as they are.
	`ALTER TABLE contacts ADD COLUMN item_dirty SMALLINT NOT NULL DEFAULT 1;
	UPDATE contacts SET item_dirty = 0 WHERE dirty = 0`,
	// Whether a contact's roster item is the user's: the roster had an
	// item for the number, outside the gateway's group, before the gateway
	// first pushed one. The gateway then never renames nor removes it.
	`ALTER TABLE contacts ADD COLUMN user_item SMALLINT NOT NULL DEFAULT 0`,
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	// A newer release migrated this database: this one would run on a
	// schema it does not know (columns it never writes, states it never
	// ends), so it refuses.
	var applied int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	if applied > len(migrations) {
		return fmt.Errorf("%w: the database is at migration %d and this release knows %d; run the release that migrated it, or restore the backup taken before the upgrade",
			ErrSchemaNewer, applied, len(migrations))
	}
	for i, m := range migrations {
		version := i + 1
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if s.dialect == postgres {
				// Instances starting together migrate one at a time.
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7254110)`); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range strings.Split(s.ddl(m), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%w\n%s", err, stmt)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, s.ms())
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %d: %w", version, err)
		}
	}
	return nil
}

// ErrSchemaNewer is returned by Open for a database a newer release has
// migrated.
var ErrSchemaNewer = errors.New("store: schema newer than this release")

// Schema is the migration the database is at (after Open, every one this
// release knows: their count).
func Schema() int { return len(migrations) }

func (s *Store) ddl(m string) string {
	r := strings.NewReplacer("{{id}}", "INTEGER PRIMARY KEY AUTOINCREMENT", "{{idref}}", "INTEGER", "{{bytes}}", "BLOB",
		"{{now_ms}}", "(CAST(strftime('%s', 'now') AS INTEGER) * 1000)")
	if s.dialect == postgres {
		r = strings.NewReplacer("{{id}}", "BIGSERIAL PRIMARY KEY", "{{idref}}", "BIGINT", "{{bytes}}", "BYTEA",
			"{{now_ms}}", "(CAST(extract(epoch FROM now()) AS BIGINT) * 1000)")
	}
	return r.Replace(m)
}
