-- pgbench script for scripts/pg-floor.sh: the rows of 100 SMS's lives in
-- Switchboard's own schema (every index and foreign key it has), in the
-- commits a durable gateway cannot do without, each statement as plain as
-- it can be:
--   accepted:  the messages inserted (their ids come back);
--   submitted: a part each, with its SMSC id, and the messages' state;
--   delivered: the parts' and the messages' state, and a notice each (the
--              receipt for the user, kept until it is sent);
--   notified:  the notices deleted.
-- user_jid names the pgbench client, so that several clients touch only
-- their own messages.
BEGIN;
WITH i AS (
	INSERT INTO messages (direction, route, state, user_jid, user_bare, user_number, peer_number, body, created_at, updated_at, lease_owner)
	SELECT 'out', 'sms', 'submitting', 'c' || :client_id || '@floor/r', 'u' || (g % 100) || '@floor', '+1201555' || lpad((g % 100)::text, 4, '0'),
		'+1201666' || lpad(((g * 7919 + :client_id * 101) % 8000)::text, 4, '0'), 'Hello, this is a message of the floor run.',
		(extract(epoch FROM now()) * 1000)::bigint, (extract(epoch FROM now()) * 1000)::bigint, 'floor'
	FROM generate_series(1, 100) g
	RETURNING id)
SELECT min(id) AS lo, max(id) AS hi FROM i \gset
COMMIT;
BEGIN;
INSERT INTO parts (message_id, seq, smsc_id, state, updated_at)
	SELECT id, 1, to_hex(id), 'submitted', updated_at FROM messages
	WHERE id BETWEEN :lo AND :hi AND user_jid = 'c' || :client_id || '@floor/r';
UPDATE messages SET state = 'submitted', lease_owner = '', next_attempt_at = updated_at + 1, updated_at = updated_at + 1
	WHERE id BETWEEN :lo AND :hi AND user_jid = 'c' || :client_id || '@floor/r';
COMMIT;
BEGIN;
UPDATE parts SET state = 'delivered', updated_at = updated_at + 2
	WHERE message_id BETWEEN :lo AND :hi AND smsc_id IN (SELECT to_hex(id) FROM messages WHERE id BETWEEN :lo AND :hi AND user_jid = 'c' || :client_id || '@floor/r');
UPDATE messages SET state = 'delivered', updated_at = updated_at + 2
	WHERE id BETWEEN :lo AND :hi AND user_jid = 'c' || :client_id || '@floor/r';
INSERT INTO notices (message_id, lease_owner, lease_until)
	SELECT id, 'floor', updated_at + 30000 FROM messages WHERE id BETWEEN :lo AND :hi AND user_jid = 'c' || :client_id || '@floor/r';
COMMIT;
DELETE FROM notices WHERE message_id IN (SELECT id FROM messages WHERE id BETWEEN :lo AND :hi AND user_jid = 'c' || :client_id || '@floor/r');
