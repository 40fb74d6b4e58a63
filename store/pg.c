/*
 * pg.c - the PostgreSQL backend: connecting, schema migrations, the
 * transactions of the writer, and the helpers of pg_*.c (pg_int.h).  The
 * directory is in pg_dir.c, relays in pg_relay.c, mail in pg_mail.c.
 *
 * Several umbox nodes share one database.  Each schema step runs in its
 * own transaction under an advisory lock, so two nodes starting at once
 * migrate one after the other; a schema newer than this program knows is
 * refused.  This connection serves the store API's callers, which wait
 * for each answer: it sends without blocking and waits in coro_poll, so
 * the same code runs in umboxctl (where that is poll) and in a loop's
 * reader and writer coroutines (where the loop goes on meanwhile).
 */
#include "store/pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/coro.h"

/* The key of the advisory lock that serialises migrations between nodes. */
#define PG_MIGRATE_LOCK	"7565746f6d626f78"	/* any fixed bigint */

/*
 * A delivery as schema step 10 defines it (step 6's first version
 * locked the users itself): the local users' rows are locked in id order
 * by the caller (the pipeline at BEGIN, pg_deliver before the call), so
 * that deliveries on other nodes to the same mailbox wait instead of both
 * passing the quota check; a statement runs only for what the call has
 * (remote recipients, queue rows to consume).
 */
#define PG_DELIVER_FUNCTION	PG_DELIVER_HEAD PG_DELIVER_TAIL
#define PG_DELIVER_HEAD \
	"FUNCTION umbox_deliver(p_mid bigint, p_sender text, p_size bigint," \
	"  p_now bigint, p_qid text, p_kind smallint, p_body bytea, p_users bigint[]," \
	"  p_prefixes bytea[], p_addresses text[], p_check boolean, p_remote text[]," \
	"  p_consume bigint[], OUT o_status integer, OUT o_message bigint," \
	"  OUT o_targets integer[], OUT o_detail text) LANGUAGE plpgsql AS $$" \
	" DECLARE" \
	"  n integer := coalesce(array_length(p_users, 1), 0);" \
	"  nremote integer := coalesce(array_length(p_remote, 1), 0);" \
	"  isfull boolean[] := '{}';" \
	"  logins text[] := '{}';" \
	"  nfull integer := 0;" \
	"  u record;" \
	"  sz bigint;" \
	"  rcpt text;" \
	" BEGIN" \
	"  PERFORM set_config('umbox.message', '', true);" \
	"  o_status := 0; o_detail := ''; o_message := p_mid;" \
	"  IF p_mid IS NOT NULL THEN" \
	"   SELECT m.size INTO sz FROM messages m WHERE m.id = p_mid;" \
	"   IF NOT FOUND THEN" \
	"    o_status := -2; o_detail := 'no message ' || p_mid; RETURN;" \
	"   END IF;" \
	"   p_size := sz;" \
	"  END IF;" \
	"  FOR i IN 1 .. n LOOP" \
	"   SELECT login, quota, used INTO u FROM users WHERE id = p_users[i];" \
	"   IF NOT FOUND THEN" \
	"    o_status := -6; o_detail := 'no user with id ' || p_users[i]; RETURN;" \
	"   END IF;"
#define PG_DELIVER_TAIL \
	"   logins[i] := u.login;" \
	"   sz := p_size + length(p_prefixes[i]);" \
	"   isfull[i] := p_check AND u.quota <> 0 AND u.used + sz > u.quota;" \
	"   IF isfull[i] THEN" \
	"    nfull := nfull + 1;" \
	"    o_detail := o_detail || CASE WHEN o_detail = '' THEN '' ELSE '; ' END ||" \
	"     format('mailbox %s would exceed its quota (%s + %s > %s bytes)'," \
	"      u.login, u.used, sz, u.quota);" \
	"   END IF;" \
	"  END LOOP;" \
	"  IF n > 0 AND nfull = n AND nremote = 0 THEN" \
	"   o_status := -5; RETURN;" \
	"  END IF;" \
	"  o_detail := '';" \
	"  IF p_mid IS NULL THEN" \
	"   INSERT INTO messages (sender, size, created_at, qid)" \
	"    VALUES (p_sender, p_size, p_now, p_qid) RETURNING id INTO o_message;" \
	"   IF length(p_body) > 0 THEN" \
	"    INSERT INTO message_chunks VALUES (o_message, 0, p_body);" \
	"   END IF;" \
	"   PERFORM set_config('umbox.message', o_message::text, true);" \
	"  END IF;" \
	"  FOR i IN 1 .. n LOOP" \
	"   IF isfull[i] THEN" \
	"    rcpt := coalesce(p_addresses[i], logins[i]);" \
	"    INSERT INTO queue (message_id, sender, recipient, next_attempt, created_at," \
	"     kind, domain, local_user_id, prefix, last_error) VALUES (o_message, p_sender," \
	"     rcpt, p_now, p_now, p_kind, umbox_domain(rcpt), p_users[i], p_prefixes[i]," \
	"     'mailbox full');" \
	"   ELSE" \
	"    INSERT INTO entries (user_id, message_id, kind, prefix, size, arrived)" \
	"     VALUES (p_users[i], o_message, p_kind, p_prefixes[i]," \
	"      p_size + length(p_prefixes[i]), p_now);" \
	"   END IF;" \
	"  END LOOP;" \
	"  IF nfull > 0 THEN" \
	"   o_targets := array(SELECT CASE WHEN f THEN 1 ELSE 0 END FROM unnest(isfull) f);" \
	"  END IF;" \
	"  IF nremote > 0 THEN" \
	"   INSERT INTO queue (message_id, sender, recipient, next_attempt, created_at, kind," \
	"    domain) SELECT o_message, p_sender, r, p_now, p_now, p_kind, umbox_domain(r)" \
	"    FROM unnest(p_remote) WITH ORDINALITY AS t(r, o) ORDER BY o;" \
	"  END IF;" \
	"  IF cardinality(p_consume) > 0 THEN" \
	"   DELETE FROM queue WHERE id = ANY(p_consume);" \
	"  END IF;" \
	" END $$"

/*
 * As schema step 11 defines it: a mailbox with a quota is locked by the
 * caller, which locks only those (PG_LOCK_USERS_SQL); one whose quota
 * was set since the caller looked is locked here, before its usage is
 * read.
 */
#define PG_DELIVER_FUNCTION_11	PG_DELIVER_HEAD \
	"   IF p_check AND u.quota <> 0 THEN" \
	"    SELECT login, quota, used INTO u FROM users WHERE id = p_users[i] FOR UPDATE;" \
	"   END IF;" \
	PG_DELIVER_TAIL

/* The schema, one step each; never edit a released step, add one. */
static const char *const pg_migrations[] = {
	/* 1: the directory; the rest of SPEC §3 comes with its operations. */
	"CREATE TABLE meta ("
	"  key text PRIMARY KEY, value text NOT NULL);"
	"CREATE TABLE domains ("
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  name text NOT NULL UNIQUE CHECK (name = lower(name)),"
	"  guard text NOT NULL DEFAULT 'unchecked',"
	"  guard_detail text NOT NULL DEFAULT '',"
	"  forced boolean NOT NULL DEFAULT false,"
	"  checked_at bigint NOT NULL DEFAULT 0,"
	"  created_at bigint NOT NULL);"
	"CREATE TABLE users ("
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  login text NOT NULL UNIQUE CHECK (login = lower(login)),"
	"  extension text UNIQUE,"
	"  name text, email text, password text,"
	"  quota bigint NOT NULL DEFAULT 0,"
	"  pop3 boolean NOT NULL DEFAULT true,"
	"  used bigint NOT NULL DEFAULT 0,"
	"  messages bigint NOT NULL DEFAULT 0,"
	"  created_at bigint NOT NULL);",

	/* 2: aliases; a member is kept as given and unique without regard to case. */
	"CREATE TABLE aliases ("
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  name text NOT NULL UNIQUE CHECK (name = lower(name)),"
	"  created_at bigint NOT NULL);"
	"CREATE TABLE alias_members ("
	"  alias_id bigint NOT NULL REFERENCES aliases(id) ON DELETE CASCADE,"
	"  member text NOT NULL,"
	"  position bigint NOT NULL);"
	"CREATE UNIQUE INDEX alias_members_key ON alias_members (alias_id, lower(member));",

	/*
	 * 3: relays (SPEC §6).  port 0 follows the TLS mode.  A domain is
	 * listed by at most one active relay: each relay_domains row carries
	 * its relay's active flag (kept by a trigger) under a partial unique
	 * index; at most one relay is the default.
	 */
	"CREATE TABLE relays ("
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  name text NOT NULL UNIQUE CHECK (name = lower(name)),"
	"  host text NOT NULL,"
	"  port integer NOT NULL DEFAULT 0,"
	"  is_default boolean NOT NULL DEFAULT false,"
	"  active boolean NOT NULL DEFAULT true,"
	"  tls text NOT NULL DEFAULT 'auto',"
	"  verify boolean NOT NULL DEFAULT true,"
	"  auth text NOT NULL DEFAULT 'auto',"
	"  account text, password text, sender text,"
	"  timeout integer NOT NULL DEFAULT 120,"
	"  chunking boolean NOT NULL DEFAULT true,"
	"  created_at bigint NOT NULL);"
	"CREATE UNIQUE INDEX relays_default ON relays (is_default) WHERE is_default;"
	"CREATE TABLE relay_domains ("
	"  relay_id bigint NOT NULL REFERENCES relays(id) ON DELETE CASCADE,"
	"  domain text NOT NULL CHECK (domain = lower(domain)),"
	"  active boolean NOT NULL,"
	"  PRIMARY KEY (relay_id, domain));"
	"CREATE UNIQUE INDEX relay_domains_active ON relay_domains (domain) WHERE active;"
	"CREATE FUNCTION relay_domains_follow() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  UPDATE relay_domains SET active = NEW.active WHERE relay_id = NEW.id;"
	"  RETURN NULL;"
	" END $$;"
	"CREATE TRIGGER relays_active AFTER UPDATE OF active ON relays"
	"  FOR EACH ROW EXECUTE FUNCTION relay_domains_follow();",

	/*
	 * 4: messages, mailbox entries, the queue and POP3 locks (SPEC §3).
	 * A message's bytes are stored once, in chunks of up to 256 KiB kept
	 * uncompressed out of line (so a slice is read without the rest);
	 * uids come from a sequence and are never reused.  Mailbox usage
	 * follows the entries.  A message that loses its last reference is
	 * marked orphaned, not deleted, so that a RETR or a delivery reading
	 * it on any node can finish; store_sweep() deletes it later.
	 * uidl_epoch: see store_uidl_format().
	 */
	"INSERT INTO meta VALUES ('uidl_epoch',"
	"  lpad(to_hex((random() * 4294967295)::bigint), 8, '0'));"
	"CREATE TABLE messages ("
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  qid text,"
	"  sender text NOT NULL,"
	"  size bigint NOT NULL,"
	"  created_at bigint NOT NULL,"
	"  orphaned_at bigint);"
	"CREATE INDEX messages_orphaned ON messages (orphaned_at) WHERE orphaned_at IS NOT NULL;"
	"CREATE TABLE message_chunks ("
	"  message_id bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	"  seq integer NOT NULL,"
	"  data bytea NOT NULL,"
	"  PRIMARY KEY (message_id, seq));"
	"ALTER TABLE message_chunks ALTER COLUMN data SET STORAGE EXTERNAL;"
	"CREATE SEQUENCE entry_uid;"
	"CREATE TABLE entries ("
	"  uid bigint PRIMARY KEY DEFAULT nextval('entry_uid'),"
	"  user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  message_id bigint NOT NULL REFERENCES messages(id),"
	"  kind smallint NOT NULL,"
	"  flags integer NOT NULL DEFAULT 0,"
	"  prefix bytea NOT NULL DEFAULT '',"
	"  size bigint NOT NULL,"
	"  arrived bigint NOT NULL);"
	"ALTER SEQUENCE entry_uid OWNED BY entries.uid;"
	"CREATE INDEX entries_user ON entries (user_id, uid);"
	"CREATE INDEX entries_message ON entries (message_id);"
	"CREATE TABLE queue ("
	"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	"  message_id bigint NOT NULL REFERENCES messages(id),"
	"  sender text NOT NULL,"
	"  recipient text NOT NULL,"
	"  domain text NOT NULL DEFAULT '',"
	"  kind smallint NOT NULL DEFAULT 0,"
	"  local_user_id bigint REFERENCES users(id) ON DELETE CASCADE,"
	"  prefix bytea NOT NULL DEFAULT '',"
	"  attempts integer NOT NULL DEFAULT 0,"
	"  next_attempt bigint NOT NULL,"
	"  last_attempt bigint NOT NULL DEFAULT 0,"
	"  last_error text NOT NULL DEFAULT '',"
	"  status smallint NOT NULL DEFAULT 0,"
	"  held boolean NOT NULL DEFAULT false,"
	"  claimed_by text,"
	"  claimed_until bigint NOT NULL DEFAULT 0,"
	"  created_at bigint NOT NULL);"
	"CREATE INDEX queue_due ON queue (status, held, next_attempt);"
	"CREATE INDEX queue_message ON queue (message_id);"
	"CREATE INDEX queue_local ON queue (local_user_id) WHERE local_user_id IS NOT NULL;"
	"CREATE TABLE pop3_locks ("
	"  user_id bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
	"  owner text NOT NULL,"
	"  expires bigint NOT NULL);"
	"CREATE FUNCTION message_unreferenced(mid bigint) RETURNS void LANGUAGE sql AS $$"
	"  UPDATE messages SET orphaned_at = floor(extract(epoch FROM now()))::bigint"
	"   WHERE id = mid AND orphaned_at IS NULL"
	"   AND NOT EXISTS (SELECT 1 FROM entries WHERE message_id = mid)"
	"   AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = mid) $$;"
	"CREATE FUNCTION entries_added() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  UPDATE users SET used = used + NEW.size, messages = messages + 1"
	"   WHERE id = NEW.user_id;"
	"  RETURN NULL;"
	" END $$;"
	"CREATE FUNCTION entries_removed() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  UPDATE users SET used = used - OLD.size, messages = messages - 1"
	"   WHERE id = OLD.user_id;"
	"  PERFORM message_unreferenced(OLD.message_id);"
	"  RETURN NULL;"
	" END $$;"
	"CREATE FUNCTION queue_removed() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  PERFORM message_unreferenced(OLD.message_id);"
	"  RETURN NULL;"
	" END $$;"
	"CREATE TRIGGER entries_ins AFTER INSERT ON entries"
	"  FOR EACH ROW EXECUTE FUNCTION entries_added();"
	"CREATE TRIGGER entries_del AFTER DELETE ON entries"
	"  FOR EACH ROW EXECUTE FUNCTION entries_removed();"
	"CREATE TRIGGER queue_del AFTER DELETE ON queue"
	"  FOR EACH ROW EXECUTE FUNCTION queue_removed();",

	/*
	 * 5: nodes sharing the database, each name held by one live process
	 * (its instance) with a heartbeat on the database's clock; a POP3
	 * lock names its node, and is free once that node's heartbeat is
	 * stale, whatever its lease says.
	 */
	"CREATE TABLE nodes ("
	"  id text PRIMARY KEY,"
	"  instance text NOT NULL,"
	"  started bigint NOT NULL,"
	"  heartbeat bigint NOT NULL);"
	"ALTER TABLE pop3_locks ADD COLUMN node text;"
	"CREATE FUNCTION umbox_now() RETURNS bigint LANGUAGE sql AS $$"
	"  SELECT floor(extract(epoch FROM clock_timestamp()))::bigint $$;",

	/*
	 * 6: a delivery is one call, so that the writer sends a batch of them
	 * without waiting for each (pg_mail.c).  It reports a refusal
	 * (quota, no such user or message) as its status, having written
	 * nothing, rather than raising: the batch's transaction goes on.
	 * The message's first chunk comes with the call; umbox_chunk() adds
	 * the others to the message the last call in this transaction made,
	 * or to nothing when that call made none.  Statuses are store.h's.
	 */
	"CREATE FUNCTION umbox_domain(address text) RETURNS text LANGUAGE sql IMMUTABLE AS $$"
	"  SELECT CASE WHEN strpos(address, '@') = 0 THEN '' ELSE"
	"   translate(regexp_replace(address, '^.*@', ''),"
	"    'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') END $$;"
	"CREATE FUNCTION umbox_deliver(p_mid bigint, p_sender text, p_size bigint,"
	"  p_now bigint, p_qid text, p_kind smallint, p_body bytea, p_users bigint[],"
	"  p_prefixes bytea[], p_addresses text[], p_check boolean, p_remote text[],"
	"  p_consume bigint[], OUT o_status integer, OUT o_message bigint,"
	"  OUT o_targets integer[], OUT o_detail text) LANGUAGE plpgsql AS $$"
	" DECLARE"
	"  n integer := coalesce(array_length(p_users, 1), 0);"
	"  nremote integer := coalesce(array_length(p_remote, 1), 0);"
	"  isfull boolean[] := '{}';"
	"  logins text[] := '{}';"
	"  nfull integer := 0;"
	"  u record;"
	"  sz bigint;"
	"  rcpt text;"
	" BEGIN"
	"  PERFORM set_config('umbox.message', '', true);"
	"  o_status := 0; o_detail := ''; o_message := p_mid;"
	"  IF p_mid IS NOT NULL THEN"
	"   SELECT m.size INTO sz FROM messages m WHERE m.id = p_mid;"
	"   IF NOT FOUND THEN"
	"    o_status := -2; o_detail := 'no message ' || p_mid; RETURN;"
	"   END IF;"
	"   p_size := sz;"
	"  END IF;"
	"  PERFORM 1 FROM users WHERE id = ANY(p_users) ORDER BY id FOR UPDATE;"
	"  FOR i IN 1 .. n LOOP"
	"   SELECT login, quota, used INTO u FROM users WHERE id = p_users[i];"
	"   IF NOT FOUND THEN"
	"    o_status := -6; o_detail := 'no user with id ' || p_users[i]; RETURN;"
	"   END IF;"
	"   logins[i] := u.login;"
	"   sz := p_size + length(p_prefixes[i]);"
	"   isfull[i] := p_check AND u.quota <> 0 AND u.used + sz > u.quota;"
	"   IF isfull[i] THEN"
	"    nfull := nfull + 1;"
	"    o_detail := o_detail || CASE WHEN o_detail = '' THEN '' ELSE '; ' END ||"
	"     format('mailbox %s would exceed its quota (%s + %s > %s bytes)',"
	"      u.login, u.used, sz, u.quota);"
	"   END IF;"
	"  END LOOP;"
	"  IF n > 0 AND nfull = n AND nremote = 0 THEN"
	"   o_status := -5; RETURN;"
	"  END IF;"
	"  o_detail := '';"
	"  IF p_mid IS NULL THEN"
	"   INSERT INTO messages (sender, size, created_at, qid)"
	"    VALUES (p_sender, p_size, p_now, p_qid) RETURNING id INTO o_message;"
	"   IF length(p_body) > 0 THEN"
	"    INSERT INTO message_chunks VALUES (o_message, 0, p_body);"
	"   END IF;"
	"   PERFORM set_config('umbox.message', o_message::text, true);"
	"  END IF;"
	"  FOR i IN 1 .. n LOOP"
	"   IF isfull[i] THEN"
	"    rcpt := coalesce(p_addresses[i], logins[i]);"
	"    INSERT INTO queue (message_id, sender, recipient, next_attempt, created_at,"
	"     kind, domain, local_user_id, prefix, last_error) VALUES (o_message, p_sender,"
	"     rcpt, p_now, p_now, p_kind, umbox_domain(rcpt), p_users[i], p_prefixes[i],"
	"     'mailbox full');"
	"   ELSE"
	"    INSERT INTO entries (user_id, message_id, kind, prefix, size, arrived)"
	"     VALUES (p_users[i], o_message, p_kind, p_prefixes[i],"
	"      p_size + length(p_prefixes[i]), p_now);"
	"   END IF;"
	"  END LOOP;"
	"  IF nfull > 0 THEN"
	"   o_targets := array(SELECT CASE WHEN f THEN 1 ELSE 0 END FROM unnest(isfull) f);"
	"  END IF;"
	"  INSERT INTO queue (message_id, sender, recipient, next_attempt, created_at, kind,"
	"   domain) SELECT o_message, p_sender, r, p_now, p_now, p_kind, umbox_domain(r)"
	"   FROM unnest(p_remote) WITH ORDINALITY AS t(r, o) ORDER BY o;"
	"  DELETE FROM queue WHERE id = ANY(p_consume);"
	" END $$;"
	"CREATE FUNCTION umbox_chunk(p_seq integer, p_data bytea) RETURNS void"
	"  LANGUAGE sql AS $$"
	"  INSERT INTO message_chunks (message_id, seq, data)"
	"   SELECT current_setting('umbox.message')::bigint, p_seq, p_data"
	"   WHERE coalesce(current_setting('umbox.message', true), '') <> '' $$;",

	/*
	 * 7: the directory's version, for the daemons' copies of it in
	 * memory (directory.c): every statement that changes a domain, a
	 * user (not its password, nor the counts each delivery moves), an
	 * alias or its members moves it, and wakes whoever listens.  And
	 * small chunks kept in line.
	 */
	"CREATE TABLE directory_version (v bigint NOT NULL);"
	"INSERT INTO directory_version VALUES (1);"
	"CREATE FUNCTION directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  UPDATE directory_version SET v = v + 1;"
	"  PERFORM pg_notify('umbox_directory', '');"
	"  RETURN NULL;"
	" END $$;"
	"CREATE TRIGGER domains_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
	"  ON domains FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER users_version AFTER INSERT OR DELETE OR TRUNCATE"
	"  ON users FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER users_version_set AFTER UPDATE OF login, extension, name, email,"
	"  quota, pop3 ON users FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER aliases_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
	"  ON aliases FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER alias_members_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
	"  ON alias_members FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();"
	/*
	 * A chunk row up to a page stays in the table rather than going out
	 * of line (most messages are one chunk of a few KiB): a delivery then
	 * writes one row, not three and an index entry.
	 */
	"ALTER TABLE message_chunks SET (toast_tuple_target = 8160);",

	/*
	 * 8: the directory's version moves per row changed, so that a
	 * statement that changes nothing (deleting a user who does not
	 * exist) wakes nobody.  TRUNCATE has statement triggers only.  And
	 * the marks the writer's transactions leave, to learn the fate of a
	 * COMMIT whose answer was lost (pg_commit_resolve); swept after an
	 * hour.
	 */
	"CREATE TABLE commit_marks (token text PRIMARY KEY,"
	"  at bigint NOT NULL DEFAULT umbox_now());"
	"DROP TRIGGER domains_version ON domains;"
	"DROP TRIGGER users_version ON users;"
	"DROP TRIGGER users_version_set ON users;"
	"DROP TRIGGER aliases_version ON aliases;"
	"DROP TRIGGER alias_members_version ON alias_members;"
	"CREATE TRIGGER domains_version AFTER INSERT OR UPDATE OR DELETE"
	"  ON domains FOR EACH ROW EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER users_version AFTER INSERT OR DELETE"
	"  ON users FOR EACH ROW EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER users_version_set AFTER UPDATE OF login, extension, name, email,"
	"  quota, pop3 ON users FOR EACH ROW EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER aliases_version AFTER INSERT OR UPDATE OR DELETE"
	"  ON aliases FOR EACH ROW EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER alias_members_version AFTER INSERT OR UPDATE OR DELETE"
	"  ON alias_members FOR EACH ROW EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER domains_truncated AFTER TRUNCATE"
	"  ON domains FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER users_truncated AFTER TRUNCATE"
	"  ON users FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER aliases_truncated AFTER TRUNCATE"
	"  ON aliases FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();"
	"CREATE TRIGGER alias_members_truncated AFTER TRUNCATE"
	"  ON alias_members FOR EACH STATEMENT EXECUTE FUNCTION directory_changed();",

	/*
	 * 9: a row queued wakes every node's runner (STORE_QUEUE_CHANNEL):
	 * a row trigger, so that a delivery queueing nothing notifies no one,
	 * and one notification per transaction however many rows, since the
	 * server folds equal ones.  The runners' own updates notify nothing
	 * (a claim must not wake the others to claim in turn); flush, hold
	 * and claim releases notify in pg_queue.c.
	 */
	"CREATE FUNCTION queue_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  PERFORM pg_notify('" STORE_QUEUE_CHANNEL "', '');"
	"  RETURN NULL;"
	" END $$;"
	"CREATE TRIGGER queue_added AFTER INSERT ON queue"
	"  FOR EACH ROW EXECUTE FUNCTION queue_changed();",

	/*
	 * 10: a delivery no longer locks its users again (its caller has),
	 * skips the queue statements it has nothing for, and plans its
	 * statements once: they have the same shape every call, and planning
	 * them each time cost a quarter of the call.  And deleting entries or
	 * queue rows settles the counts and marks unreferenced messages once
	 * per statement, not per row: a POP3 QUIT deleting 200 messages
	 * updated its user's row 200 times, each update slower than the last.
	 */
	"CREATE OR REPLACE " PG_DELIVER_FUNCTION ";"
	"ALTER FUNCTION umbox_deliver(bigint, text, bigint, bigint, text, smallint, bytea,"
	"  bigint[], bytea[], text[], boolean, text[], bigint[])"
	"  SET plan_cache_mode = force_generic_plan;"
	"CREATE FUNCTION messages_unreferenced(mids bigint[]) RETURNS void LANGUAGE sql AS $$"
	"  UPDATE messages m SET orphaned_at = floor(extract(epoch FROM now()))::bigint"
	"   WHERE m.id = ANY(mids) AND m.orphaned_at IS NULL"
	"   AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.message_id = m.id)"
	"   AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message_id = m.id) $$;"
	"CREATE FUNCTION entries_gone() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  UPDATE users u SET used = u.used - d.size, messages = u.messages - d.n"
	"   FROM (SELECT user_id, sum(size) AS size, count(*) AS n FROM gone"
	"    GROUP BY user_id) d WHERE u.id = d.user_id;"
	"  PERFORM messages_unreferenced(array(SELECT DISTINCT message_id FROM gone));"
	"  RETURN NULL;"
	" END $$;"
	"CREATE FUNCTION queue_gone() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  PERFORM messages_unreferenced(array(SELECT DISTINCT message_id FROM gone));"
	"  RETURN NULL;"
	" END $$;"
	"DROP TRIGGER entries_del ON entries;"
	"DROP TRIGGER queue_del ON queue;"
	"DROP FUNCTION entries_removed();"
	"DROP FUNCTION queue_removed();"
	"DROP FUNCTION message_unreferenced(bigint);"
	"CREATE TRIGGER entries_gone AFTER DELETE ON entries REFERENCING OLD TABLE AS gone"
	"  FOR EACH STATEMENT EXECUTE FUNCTION entries_gone();"
	"CREATE TRIGGER queue_gone AFTER DELETE ON queue REFERENCING OLD TABLE AS gone"
	"  FOR EACH STATEMENT EXECUTE FUNCTION queue_gone();",

	/*
	 * 11: a delivery to a mailbox without a quota no longer updates its
	 * user's row, which made every delivery to that mailbox, from every
	 * node, wait for the one before to commit: the usage it adds is a
	 * row of usage_deltas, which readers add to the user's and the
	 * heartbeat folds into it (usage_settle, one node at a time).  A
	 * mailbox with a quota keeps its row exact, locked by each delivery
	 * to it.  Setting a quota first locks the row FOR UPDATE, which
	 * waits for the deliveries in flight (their entries hold it FOR KEY
	 * SHARE), then folds its deltas; a delivery that read no quota but
	 * commits after finds one when it adds its usage, and adds it there.
	 */
	"CREATE TABLE usage_deltas ("
	"  user_id bigint NOT NULL,"
	"  size bigint NOT NULL,"
	"  messages integer NOT NULL);"
	"CREATE INDEX usage_deltas_user ON usage_deltas (user_id);"
	"CREATE OR REPLACE FUNCTION entries_added() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  UPDATE users SET used = used + NEW.size, messages = messages + 1"
	"   WHERE id = NEW.user_id AND quota <> 0;"
	"  IF NOT FOUND THEN"
	"   INSERT INTO usage_deltas VALUES (NEW.user_id, NEW.size, 1);"
	"  END IF;"
	"  RETURN NULL;"
	" END $$;"
	"CREATE FUNCTION usage_settle(p_user bigint) RETURNS void LANGUAGE plpgsql AS $$"
	" DECLARE"
	"  t record;"
	" BEGIN"
	"  FOR t IN WITH d AS (DELETE FROM usage_deltas"
	"    WHERE p_user IS NULL OR user_id = p_user RETURNING user_id, size, messages)"
	"   SELECT user_id, sum(size) AS size, sum(messages) AS n FROM d"
	"   GROUP BY user_id ORDER BY user_id LOOP"
	"   UPDATE users SET used = used + t.size, messages = messages + t.n"
	"    WHERE id = t.user_id;"
	"  END LOOP;"
	" END $$;"
	"CREATE OR REPLACE " PG_DELIVER_FUNCTION_11 ";"
	"ALTER FUNCTION umbox_deliver(bigint, text, bigint, bigint, text, smallint, bytea,"
	"  bigint[], bytea[], text[], boolean, text[], bigint[])"
	"  SET plan_cache_mode = force_generic_plan;",

	/*
	 * 12: a copy waiting in the queue for room in its mailbox is due as
	 * soon as the room is there (pg_queue.c's PG_LOCAL_ROOM), so the
	 * change that makes room wakes the runners: its user's usage falling
	 * (entries deleted) or quota rising or lifted.  Only mailboxes with a
	 * quota, before or after, can have such copies, and only those that
	 * have one notify; the runners claim it on the notification.
	 */
	"CREATE FUNCTION room_made() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	"  IF EXISTS (SELECT 1 FROM queue WHERE local_user_id = NEW.id AND status = 0"
	"    AND last_error = 'mailbox full') THEN"
	"   PERFORM pg_notify('" STORE_QUEUE_CHANNEL "', '');"
	"  END IF;"
	"  RETURN NULL;"
	" END $$;"
	"CREATE TRIGGER users_room AFTER UPDATE OF used, quota ON users FOR EACH ROW"
	"  WHEN ((NEW.used < OLD.used AND (OLD.quota <> 0 OR NEW.quota <> 0))"
	"   OR (OLD.quota <> 0 AND (NEW.quota = 0 OR NEW.quota > OLD.quota)))"
	"  EXECUTE FUNCTION room_made();",
};
#define PG_SCHEMA_VERSION	(int)(sizeof(pg_migrations) / sizeof(pg_migrations[0]))

PGconn *
pg_conn(struct store *s)
{
	return ((struct pg *)s->impl)->conn;
}

/*
 * A failed command's status, from its SQLSTATE: a unique key taken is
 * STORE_EXISTS, a full disk STORE_FULL, a value refused STORE_INVALID;
 * the rest (connection lost, server errors) a temporary STORE_ERROR.
 */
static int
pg_status_of(const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (state == NULL)
		return STORE_ERROR;
	if (strcmp(state, "23505") == 0)		/* unique_violation */
		return STORE_EXISTS;
	if (strcmp(state, "53100") == 0)		/* disk_full */
		return STORE_FULL;
	if (strncmp(state, "22", 2) == 0 ||		/* data exception */
	    strcmp(state, "23514") == 0 ||		/* check_violation */
	    strcmp(state, "23502") == 0)		/* not_null_violation */
		return STORE_INVALID;
	return STORE_ERROR;
}

/* read_only_sql_transaction: the dsn leads to a server that takes no writes. */
#define PG_READ_ONLY_HINT " (this server takes no writes: a standby, or" \
	" default_transaction_read_only; name the primary in [store] dsn, with" \
	" target_session_attrs=read-write when it lists several hosts)"

/* The error of a failed command as a store status and message. */
int
pg_fail(struct store *s, PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	int status = pg_status_of(r);
	char msg[400];

	/* A failed command spoils the transaction; serialization_failure,
	 * deadlock_detected: another try may pass. */
	s->clean = 0;
	s->retry = state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);

	pg_msg(r ? PQresultErrorMessage(r) : PQerrorMessage(pg_conn(s)), msg, sizeof(msg));
	store_fail(s, status, "%s: %s%s", what, msg,
	    state && strcmp(state, "25006") == 0 ? PG_READ_ONLY_HINT : "");
	PQclear(r);
	return status;
}

/* Is sql the command word, alone or followed by its options? */
static int
pg_sql_is(const char *sql, const char *word, int options)
{
	size_t n = strlen(word);

	return strncmp(sql, word, n) == 0 && (sql[n] == '\0' || (options && sql[n] == ' '));
}

static int pg_session_setup(struct store *s);

/*
 * Push out what was sent and wait until an answer can be read without
 * blocking, taking in the server's bytes as they come.  0, or -1 when
 * the connection failed (PQgetResult then says so at once).
 */
static int
pg_wait(PGconn *c)
{
	for (;;) {
		int flush = PQflush(c);
		struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };

		if (flush < 0)
			return -1;
		if (flush == 0 && !PQisBusy(c))
			return 0;
		if (flush == 1)
			pfd.events |= POLLOUT;
		if (coro_poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && !PQconsumeInput(c))
			return -1;
	}
}

/*
 * The answer to what was just sent (sent: what PQsend* returned), as
 * PQexec gives it, waited for in pg_wait: the last result, or the first
 * that failed; never NULL.
 */
static PGresult *
pg_answer(PGconn *c, int sent)
{
	PGresult *r, *last = NULL;

	while (sent) {
		(void)pg_wait(c);
		if ((r = PQgetResult(c)) == NULL)
			break;
		if (last == NULL || PQresultStatus(last) != PGRES_FATAL_ERROR) {
			PQclear(last);
			last = r;
		} else
			PQclear(r);
	}
	return last ? last : PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
}

/* Forget the statements prepared on a connection that is gone. */
static void
pg_stmts_clear(struct pg *p)
{
	for (size_t i = 0; i < PG_STMTS; i++) {
		free(p->stmts[i].sql);
		p->stmts[i].sql = NULL;
	}
}

/*
 * The name of sql prepared on this connection (parsed and planned once,
 * not at every call), preparing it on first use; NULL when it cannot be
 * (the table is full, or the server refused: then the caller runs it
 * unprepared and meets the error there).  Keyed by the text: some
 * statements are built at run time.
 */
static const char *
pg_prepared(struct pg *p, const char *sql, int n, char name[16])
{
	uint32_t h = 2166136261u;
	size_t i;
	PGresult *r;

	for (const unsigned char *c = (const unsigned char *)sql; *c; c++)
		h = (h ^ *c) * 16777619u;
	for (size_t k = 0; k < PG_STMTS; k++) {
		i = (h + k) & (PG_STMTS - 1);
		if (p->stmts[i].sql == NULL)
			break;
		if (p->stmts[i].hash == h && strcmp(p->stmts[i].sql, sql) == 0) {
			snprintf(name, 16, "p%zu", i);
			return name;
		}
	}
	if (p->stmts[i].sql != NULL || PQpipelineStatus(p->conn) != PQ_PIPELINE_OFF)
		return NULL;	/* full, or no waiting for a PREPARE in a pipeline */
	snprintf(name, 16, "p%zu", i);
	r = pg_answer(p->conn, PQsendPrepare(p->conn, name, sql, n, NULL));
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		return NULL;
	}
	PQclear(r);
	p->stmts[i].sql = xstrdup(sql);
	p->stmts[i].hash = h;
	return name;
}

void
pg_prepare(struct store *s, const char *sql, int n)
{
	char name[16];

	pg_prepared(s->impl, sql, n, name);
}

/*
 * Before a connection that sat idle starts new work: has the server
 * closed it meanwhile (a restart, pg_terminate_backend)?  Its goodbye is
 * waiting in the socket, and reading it marks the connection bad, so the
 * caller reconnects before sending anything rather than failing its
 * first command.  Costs a poll of the socket.
 */
static void
pg_check_idle(struct pg *p)
{
	for (int round = 0; round < 4 && PQstatus(p->conn) == CONNECTION_OK; round++) {
		struct pollfd pfd = { .fd = PQsocket(p->conn), .events = POLLIN };

		if (pfd.fd < 0 || poll(&pfd, 1, 0) != 1 || !PQconsumeInput(p->conn))
			return;
	}
}

/*
 * A connection the server dropped (a restart, a failover) is made again
 * before the next command: at once the first time, then after a wait
 * that doubles with each failure (PG_BACKOFF_MIN to PG_BACKOFF_MAX ms,
 * less a random part, so that a node's connections do not knock
 * together), while commands fail at once with the last reason.  Not
 * while a transaction was open on it: that went with the connection,
 * and its owner must learn so (its next command fails) and end it
 * first.  Returns STORE_OK, or the failure recorded for what.
 */
#define PG_BACKOFF_MIN	250
#define PG_BACKOFF_MAX	4000

static void pg_ignore_notice(void *arg, const char *message);
static int pg_session_setup(struct store *s);

static int
pg_reconnect(struct store *s, const char *what)
{
	struct pg *p = s->impl;
	char err[sizeof(p->conn_err) - 32];
	PGconn *c;

	if (p->open)
		return pg_fail(s, NULL, what);
	s->clean = 0;
	s->retry = 0;
	if (monotonic_ms() < p->next_try)
		return store_fail(s, STORE_ERROR, "%s: %s", what, p->conn_err);
	if ((c = pg_connect(p->dsn, &p->dns, err, sizeof(err))) == NULL) {
		p->backoff = p->backoff ? p->backoff * 2 : PG_BACKOFF_MIN;
		if (p->backoff > PG_BACKOFF_MAX)
			p->backoff = PG_BACKOFF_MAX;
		p->next_try = monotonic_ms() + p->backoff - arc4random_uniform(p->backoff / 4 + 1);
		snprintf(p->conn_err, sizeof(p->conn_err), "cannot reach PostgreSQL: %s", err);
		return store_fail(s, STORE_ERROR, "%s: %s", what, p->conn_err);
	}
	PQfinish(p->conn);
	p->conn = c;
	PQsetNoticeProcessor(c, pg_ignore_notice, NULL);
	pg_stmts_clear(p);
	p->backoff = 0;
	p->next_try = 0;
	p->in_read = 0;
	return pg_session_setup(s);
}

/*
 * Run one command with text parameters (NULL is SQL NULL).  Returns the
 * result when it succeeded (free it with PQclear), else NULL with the
 * status in *status and the message recorded.
 */
#define PG_TRIES	4	/* of a command alone that met a deadlock */

PGresult *
pg_query(struct store *s, int *status, const char *what, const char *sql, int n,
    const char *const *params, const int *lengths, const int *formats, int binary)
{
	struct pg *p = s->impl;
	int ending = pg_sql_is(sql, "COMMIT", 0) || pg_sql_is(sql, "ROLLBACK", 0);
	const char *stmt = NULL;
	char name[16];
	PGresult *r;
	ExecStatusType t;
	int alone;

	if (!p->open && !p->in_read)
		pg_check_idle(p);
	if (PQstatus(p->conn) == CONNECTION_BAD) {
		*status = ending ? pg_fail(s, NULL, what) : pg_reconnect(s, what);
		p->open = p->open && !ending;
		if (*status != STORE_OK)
			return NULL;
	}
	/*
	 * Without parameters, the simple protocol: the text may hold several
	 * commands.  With them, a statement prepared once per connection.
	 */
	if (n > 0 || binary)
		stmt = pg_prepared(p, sql, n, name);
	/*
	 * A command in a transaction of its own that met another's locks in
	 * the wrong order (a deadlock; umboxctl queue flush against a node's
	 * reports, say) left nothing behind: it runs again, after a short
	 * random wait, as the writer runs its batches again.  Within the
	 * caller's transaction that is the caller's to decide.
	 */
	alone = PQtransactionStatus(p->conn) == PQTRANS_IDLE;
	for (unsigned tries = 1; ; tries++) {
		const char *state;

		r = pg_answer(p->conn, stmt ?
		    PQsendQueryPrepared(p->conn, stmt, n, params, lengths, formats, binary) :
		    n == 0 && !binary ? PQsendQuery(p->conn, sql) :
		    PQsendQueryParams(p->conn, sql, n, NULL, params, lengths, formats, binary));
		state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (!alone || tries == PG_TRIES || state == NULL ||
		    (strcmp(state, "40P01") != 0 && strcmp(state, "40001") != 0) ||
		    PQtransactionStatus(p->conn) != PQTRANS_IDLE)
			break;
		PQclear(r);
		coro_sleep((int)(1 + arc4random_uniform(10u << tries)));
	}
	t = PQresultStatus(r);
	if (ending)
		p->open = 0;
	else if (pg_sql_is(sql, "BEGIN", 1) && t == PGRES_COMMAND_OK)
		p->open = 1;
	if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK) {
		*status = STORE_OK;
		return r;
	}
	*status = pg_fail(s, r, what);
	return NULL;
}

PGresult *
pg_run(struct store *s, int *status, const char *what, const char *sql, int n,
    const char *const *params)
{
	return pg_query(s, status, what, sql, n, params, NULL, NULL, 0);
}

/* A command whose rows do not matter: STORE_OK, or the status. */
int
pg_exec(struct store *s, const char *what, const char *sql, int n, const char *const *params)
{
	int status;
	PGresult *r = pg_run(s, &status, what, sql, n, params);

	PQclear(r);
	return status;
}

/* A command that changes one named row: STORE_NOTFOUND when there was none. */
int
pg_exec_one(struct store *s, const char *what, const char *sql, int n,
    const char *const *params, const char *missing)
{
	int status;
	PGresult *r = pg_run(s, &status, what, sql, n, params);

	if (r && strcmp(PQcmdTuples(r), "0") == 0)
		status = store_fail(s, STORE_NOTFOUND, "%s", missing);
	PQclear(r);
	return status;
}

char *
pg_col_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

int64_t
pg_col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int
pg_col_bool(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col)[0] == 't';
}

const char *
pg_i64(char *buf, int64_t v)
{
	snprintf(buf, PG_INT_LEN, "%" PRId64, v);
	return buf;
}

int
pg_rows(struct store *s, const char *what, const char *sql, int n, const char *const *params,
    size_t size, pg_row_fn *row, void *out, size_t *count)
{
	int status, k;
	PGresult *r = pg_run(s, &status, what, sql, n, params);
	char *list;

	if (r == NULL)
		return status;
	k = PQntuples(r);
	list = xcalloc(k > 0 ? (size_t)k : 1, size);
	for (int i = 0; i < k; i++)
		row(s, r, i, list + (size_t)i * size);
	PQclear(r);
	*(void **)out = list;
	*count = (size_t)k;
	return STORE_OK;
}

int64_t
pg_bin_i64(const PGresult *r, int row, int col)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	int len = PQgetlength(r, row, col);
	uint64_t v = 0;

	if (PQgetisnull(r, row, col) || len < 1 || len > 8)
		return 0;
	for (int i = 0; i < len; i++)
		v = v << 8 | p[i];
	if (len < 8 && (p[0] & 0x80))		/* sign-extend smallint, integer */
		v |= ~(uint64_t)0 << (len * 8);
	return (int64_t)v;
}

char *
pg_int_array(const int64_t *v, size_t n)
{
	char *out = xmalloc(n * 21 + 3), *p = out;

	*p++ = '{';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%" PRId64, i ? "," : "", v[i]);
	*p++ = '}';
	*p = '\0';
	return out;
}

/* ---- opening and the schema ---- */

static int
pg_schema_version(struct store *s)
{
	int status, v = -1;
	PGresult *r = pg_run(s, &status, "schema version",
	    "SELECT version FROM umbox_schema", 0, NULL);

	if (r && PQntuples(r) == 1)
		v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/*
 * One step per transaction, each under the advisory lock and reading the
 * version again once it holds it: another node may have moved it on.
 * Returns STORE_OK when the schema is this program's.
 */
static int
pg_migrate(struct store *s)
{
	for (;;) {
		int status, have;
		PGresult *r;
		char *sql;

		if ((status = pg_exec(s, "begin", "BEGIN", 0, NULL)) != STORE_OK)
			return status;
		r = pg_run(s, &status, "lock the schema",
		    "SELECT pg_advisory_xact_lock(x'" PG_MIGRATE_LOCK "'::bigint);"
		    "CREATE TABLE IF NOT EXISTS umbox_schema (version integer NOT NULL);"
		    "INSERT INTO umbox_schema SELECT 0"
		    "  WHERE NOT EXISTS (SELECT 1 FROM umbox_schema);"
		    "SELECT version FROM umbox_schema", 0, NULL);
		if (r == NULL) {
			pg_exec(s, "rollback", "ROLLBACK", 0, NULL);
			return status;
		}
		have = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
		if (have >= PG_SCHEMA_VERSION) {
			pg_exec(s, "rollback", "ROLLBACK", 0, NULL);
			if (have > PG_SCHEMA_VERSION)
				return store_fail(s, STORE_INVALID, "the database's schema"
				    " version %d is newer than this umbox knows (%d):"
				    " upgrade umbox", have, PG_SCHEMA_VERSION);
			return STORE_OK;
		}
		sql = xasprintf("%s; UPDATE umbox_schema SET version = %d",
		    pg_migrations[have], have + 1);
		status = pg_exec(s, "migrate the schema", sql, 0, NULL);
		free(sql);
		if (status != STORE_OK) {
			pg_exec(s, "rollback", "ROLLBACK", 0, NULL);
			return status;
		}
		if ((status = pg_exec(s, "commit", "COMMIT", 0, NULL)) != STORE_OK)
			return status;
	}
}

static int
pg_load_epoch(struct store *s)
{
	int status;
	PGresult *r = pg_run(s, &status, "read uidl epoch",
	    "SELECT value FROM meta WHERE key = 'uidl_epoch'", 0, NULL);

	if (r == NULL)
		return status;
	if (PQntuples(r) == 1)
		((struct pg *)s->impl)->epoch = (uint32_t)strtoul(PQgetvalue(r, 0, 0), NULL, 16);
	else
		status = store_fail(s, STORE_ERROR, "store has no uidl epoch");
	PQclear(r);
	return status;
}

static void
pg_ignore_notice(void *arg, const char *message)
{
}

/*
 * An acknowledgement means the commit is flushed (and replicated).  The
 * connections are the daemon's own, kept for its life: a server's (or
 * role's) idle_session_timeout, as managed services set, would only
 * close them between uses to be made again (the listening one sits idle
 * by design), so it is off for them (PostgreSQL 14 and later have it).
 */
static int
pg_session_setup(struct store *s)
{
	struct pg *p = s->impl;

	return pg_exec(s, "set up the session", PQserverVersion(p->conn) >= 140000 ?
	    "SET synchronous_commit = on; SET client_min_messages = warning;"
	    " SET idle_session_timeout = 0" :
	    "SET synchronous_commit = on; SET client_min_messages = warning", 0, NULL);
}

/*
 * The server's max_connections, or a role's or database's CONNECTION
 * LIMIT, reached (known by its English text: a refused connection has no
 * SQLSTATE to ask).
 */
#define PG_TOO_MANY_HINT " (each umbox daemon holds two connections per event loop" \
	" and one more, umboxctl one: raise the server's max_connections or the" \
	" role's or database's CONNECTION LIMIT, or lower [general] threads)"

static int
pg_open(struct store *s, const struct store_config *cfg, int flags)
{
	struct pg *p = xcalloc(1, sizeof(*p));
	char err[sizeof(s->errmsg) - 40];
	int status;

	s->impl = p;
	p->node = xstrdup(cfg->node_id ? cfg->node_id : "");
	p->dsn = xstrdup(cfg->dsn ? cfg->dsn : "");
	endpoint_list_copy(&p->dns, cfg->dns_servers);
	if ((p->conn = pg_connect(p->dsn, &p->dns, err, sizeof(err))) == NULL)
		return store_fail(s, STORE_ERROR, "cannot connect to PostgreSQL: %s%s", err,
		    strstr(err, "too many c") ? PG_TOO_MANY_HINT : "");
	s->where = xasprintf("postgresql database %s on %s:%s", PQdb(p->conn),
	    PQhost(p->conn), PQport(p->conn));
	/* Notices (a warning from the server) are not failures: not printed. */
	PQsetNoticeProcessor(p->conn, pg_ignore_notice, NULL);
	if ((status = pg_session_setup(s)) != STORE_OK)
		return status;
	if (flags & STORE_READONLY) {
		int v = pg_schema_version(s);

		if (v > PG_SCHEMA_VERSION)
			return store_fail(s, STORE_INVALID, "the database's schema version %d"
			    " is newer than this umbox knows (%d): upgrade umbox", v,
			    PG_SCHEMA_VERSION);
		if (v != PG_SCHEMA_VERSION)
			return store_fail(s, STORE_NOTFOUND, "the database has no umbox schema");
		return pg_load_epoch(s);
	}
	if ((status = pg_migrate(s)) != STORE_OK)
		return status;
	return pg_load_epoch(s);
}

static void
pg_close(struct store *s)
{
	struct pg *p = s->impl;

	if (p == NULL)
		return;
	PQfinish(p->conn);
	pg_stmts_clear(p);
	free(p->dsn);
	endpoint_list_clear(&p->dns);
	free(p->node);
	free(p);
	s->impl = NULL;
}

#define STR_(x)	#x
#define STR(x)	STR_(x)

/* store_check(): the server settings an acknowledgement relies on, and the live nodes. */
static int
pg_check(struct store *s, store_check_fn *fn, void *arg)
{
	int status;
	PGresult *r = pg_run(s, &status, "check the server", "SELECT"
	    " (SELECT setting FROM pg_settings WHERE name = 'fsync'),"
	    " (SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit'),"
	    " (SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')),"
	    " current_setting('server_version'),"
	    " (SELECT string_agg(id || ' (' || instance || ')', ', ' ORDER BY id) FROM nodes"
	    "  WHERE heartbeat >= umbox_now() - " STR(STORE_NODE_STALE) ")", 0, NULL);
	char text[256];
	const char *sc;

	if (r == NULL)
		return status;
	snprintf(text, sizeof(text), "PostgreSQL %s", PQgetvalue(r, 0, 3));
	fn(arg, "server", STORE_CHECK_OK, text);
	if (strcmp(PQgetvalue(r, 0, 0), "on") == 0)
		fn(arg, "fsync", STORE_CHECK_OK, "on");
	else
		fn(arg, "fsync", STORE_CHECK_FAILED, "off: a crash of the server can lose"
		    " acknowledged mail; set fsync = on");
	sc = PQgetvalue(r, 0, 1);
	snprintf(text, sizeof(text), "%s by default; umbox's sessions use on", sc);
	fn(arg, "sync_commit", strcmp(sc, "off") == 0 || strcmp(sc, "local") == 0 ?
	    STORE_CHECK_WARNING : STORE_CHECK_OK, text);
	if (pg_col_i64(r, 0, 2) > 0) {
		snprintf(text, sizeof(text), "%s synchronous", PQgetvalue(r, 0, 2));
		fn(arg, "standby", STORE_CHECK_OK, text);
	} else
		fn(arg, "standby", STORE_CHECK_WARNING, "none synchronous: losing this server"
		    " loses acknowledged mail written since the last backup");
	fn(arg, "nodes", STORE_CHECK_OK, PQgetisnull(r, 0, 4) ? "none live" : PQgetvalue(r, 0, 4));
	PQclear(r);
	return STORE_OK;
}

/* ---- transactions ---- */

/* A transaction of the operation's own, unless the writer's is open. */
void
pg_abort(struct store *s)
{
	struct pg *p = s->impl;

	if (PQstatus(p->conn) == CONNECTION_OK)
		PQclear(pg_answer(p->conn, PQsendQuery(p->conn, "ROLLBACK")));
	p->open = 0;
}

int
pg_txn_begin(struct store *s, int *own)
{
	*own = 0;
	if (((struct pg *)s->impl)->in_txn)
		return STORE_OK;
	*own = 1;
	return pg_exec(s, "begin", "BEGIN", 0, NULL);
}

int
pg_txn_end(struct store *s, int own, int status)
{
	if (!own)
		return status;
	if (status == STORE_OK && (status = pg_exec(s, "commit", "COMMIT", 0, NULL)) == STORE_OK)
		return STORE_OK;
	pg_abort(s);
	return status;
}

/*
 * The writer's transactions each write a mark of their own first: a
 * random token in commit_marks, by which a COMMIT whose answer was lost
 * is known to have committed or not (a transaction id would not do: one
 * whose work never reached the disk is given again after a crash).
 */
#define PG_MARK_SQL		"INSERT INTO commit_marks (token) VALUES ($1)"
#define PG_MARK_SQL_TEXT	"INSERT INTO commit_marks (token) VALUES ('%s')"

static void
pg_mark_new(struct pg *p)
{
	unsigned char b[16];

	arc4random_buf(b, sizeof(b));
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(p->mark + 2 * i, 3, "%02x", b[i]);
}

static int
pg_begin(struct store *s)
{
	struct pg *p = s->impl;
	char sql[128];
	int status;

	pg_mark_new(p);
	snprintf(sql, sizeof(sql), "BEGIN; " PG_MARK_SQL_TEXT, p->mark);
	if ((status = pg_exec(s, "begin", sql, 0, NULL)) != STORE_OK) {
		p->mark[0] = '\0';
		return status;
	}
	p->in_txn = 1;
	return STORE_OK;
}

/*
 * The connection went while COMMIT was on its way: the transaction may
 * have committed or not, and nothing may be acknowledged or refused
 * before knowing which.  Reconnect (for up to PG_LOST_COMMIT_WAIT
 * seconds: a server restarting) and write the transaction's mark: taken
 * means it committed; an old session still at it holds the insert back
 * until it ends; a mark written now means it did not, and never will.
 */
#define PG_LOST_COMMIT_WAIT	15

static int
pg_commit_resolve(struct store *s, const char *mark)
{
	struct pg *p = s->impl;
	time_t until = time(NULL) + PG_LOST_COMMIT_WAIT;
	const char *v[] = { mark };
	char first[sizeof(s->errmsg)];
	PGresult *r;
	int status;

	snprintf(first, sizeof(first), "%s", s->errmsg);
	while (PQstatus(p->conn) == CONNECTION_BAD && time(NULL) < until)
		if (pg_reconnect(s, "a lost commit") != STORE_OK)
			coro_sleep(100);	/* till its next try */
	if (PQstatus(p->conn) == CONNECTION_BAD)
		return store_fail(s, STORE_ERROR, "%s; the server could not be reached again to"
		    " learn whether it committed", first);
	r = pg_run(s, &status, "a lost commit", "INSERT INTO commit_marks (token) VALUES ($1)"
	    " ON CONFLICT DO NOTHING", 1, v);
	if (r == NULL)
		return status;
	status = strcmp(PQcmdTuples(r), "0") == 0 ? STORE_OK :
	    store_fail(s, STORE_ERROR, "%s; it did not commit", first);
	PQclear(r);
	return status;
}

static int
pg_commit(struct store *s)
{
	struct pg *p = s->impl;
	char mark[sizeof(p->mark)];
	int status;

	p->in_txn = 0;
	snprintf(mark, sizeof(mark), "%s", p->mark);
	p->mark[0] = '\0';
	status = pg_exec(s, "commit", "COMMIT", 0, NULL);
	if (status != STORE_OK && mark[0] && PQstatus(p->conn) == CONNECTION_BAD)
		status = pg_commit_resolve(s, mark);
	return status;
}

static void
pg_rollback(struct store *s)
{
	((struct pg *)s->impl)->in_txn = 0;
	((struct pg *)s->impl)->mark[0] = '\0';
	pg_exec(s, "rollback", "ROLLBACK", 0, NULL);
}

/* ---- a batch in one round trip ---- */

/*
 * The writer's batch as a pipeline (libpq's pipeline mode): BEGIN, the
 * transaction's mark, the batch's user rows locked in id order, each
 * request's statements, COMMIT and a Sync all go out before any answer
 * is read.  The server needs nothing more from us to end the batch: it
 * commits it, or after a failure skips to the Sync and nothing commits.
 * So a batch costs one round trip and one WAL flush however many
 * requests it holds.  A connection lost before COMMIT went out leaves
 * nothing committed; one lost after leaves a transaction whose mark is
 * known: pg_commit_resolve learns its fate, and no delivery is stored
 * twice for want of its answer, nor acknowledged when it did not
 * commit.  The connection never blocks, and everything sent is flushed
 * as it goes (reading answers as they come, so that neither side waits
 * on the other's full buffer): what libpq holds stays near one chunk of
 * a message.
 */

/* Push out what libpq holds, taking in answers meanwhile. */
static int
pg_pipe_flush(struct store *s, const char *what)
{
	PGconn *c = pg_conn(s);
	int rc;

	while ((rc = PQflush(c)) == 1) {
		struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN | POLLOUT };

		if (coro_poll(&pfd, 1, -1) < 0 && errno != EINTR)
			break;
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && !PQconsumeInput(c))
			return pg_fail(s, NULL, what);
	}
	return rc == 0 ? STORE_OK : pg_fail(s, NULL, what);
}

int
pg_pipe_send(struct store *s, const char *what, const char *sql, int n,
    const char *const *params, const int *lengths, const int *formats)
{
	struct pg *p = s->impl;
	char name[16];
	const char *stmt = pg_prepared(p, sql, n, name);
	int ok = stmt ? PQsendQueryPrepared(p->conn, stmt, n, params, lengths, formats, 0) :
	    PQsendQueryParams(p->conn, sql, n, NULL, params, lengths, formats, 0);

	if (!ok)
		return pg_fail(s, NULL, what);
	return pg_pipe_flush(s, what);
}

PGresult *
pg_pipe_result(struct store *s, int *status, const char *what)
{
	PGconn *c = pg_conn(s);
	PGresult *r, *end;
	ExecStatusType t;

	(void)pg_wait(c);	/* a failure: PQgetResult says so at once */
	r = PQgetResult(c);

	if (r == NULL) {
		*status = store_fail(s, STORE_ERROR, "%s: no answer", what);
		return NULL;
	}
	/* A statement's answer ends with a NULL; a Sync's has none. */
	if ((t = PQresultStatus(r)) != PGRES_PIPELINE_SYNC) {
		(void)pg_wait(c);
		if ((end = PQgetResult(c)) != NULL)
			PQclear(end);	/* a second result: a protocol surprise, refused below */
	}
	if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK || t == PGRES_PIPELINE_SYNC) {
		*status = STORE_OK;
		return r;
	}
	if (t == PGRES_PIPELINE_ABORTED) {
		PQclear(r);
		*status = store_fail(s, STORE_ERROR, "%s: not run after an earlier failure", what);
		return NULL;
	}
	*status = pg_fail(s, r, what);
	return NULL;
}

/* Read and drop every answer still due, and leave pipeline mode. */
static void
pg_pipe_drain(struct store *s)
{
	struct pg *p = s->impl;
	int nulls = 0;

	while (PQpipelineStatus(p->conn) != PQ_PIPELINE_OFF && !PQexitPipelineMode(p->conn)) {
		PGresult *r;

		if (PQstatus(p->conn) == CONNECTION_BAD)
			break;
		(void)pg_wait(p->conn);
		if ((r = PQgetResult(p->conn)) == NULL && ++nulls > 2)
			break;		/* nothing more will come */
		if (r)
			nulls = 0;
		PQclear(r);
	}
}

static int
pg_pipe_begin(struct store *s, const int64_t *users, size_t n)
{
	struct pg *p = s->impl;
	char *arr = NULL;
	const char *v[1];
	int status;

	p->mark[0] = '\0';
	pg_check_idle(p);
	if (PQstatus(p->conn) == CONNECTION_BAD && (status = pg_reconnect(s, "begin")) != STORE_OK)
		return status;
	/* Prepared before the pipeline: there a PREPARE's answer cannot be awaited. */
	pg_prepare(s, PG_MARK_SQL, 1);
	pg_prepare(s, PG_LOCK_USERS_SQL, 1);
	pg_pipe_prepare(s);
	if (!PQenterPipelineMode(p->conn)) {
		status = pg_fail(s, NULL, "begin");
		pg_pipe_drain(s);
		return status;
	}
	p->open = 1;
	p->in_txn = 1;
	pg_mark_new(p);
	v[0] = p->mark;
	status = pg_pipe_send(s, "begin", "BEGIN", 0, NULL, NULL, NULL);
	if (status == STORE_OK)
		status = pg_pipe_send(s, "begin", PG_MARK_SQL, 1, v, NULL, NULL);
	if (status == STORE_OK && n > 0) {
		v[0] = arr = pg_int_array(users, n);
		status = pg_pipe_send(s, "lock mailboxes", PG_LOCK_USERS_SQL, 1, v, NULL, NULL);
		free(arr);
	}
	p->locked = n > 0;
	if (status != STORE_OK) {
		PQpipelineSync(p->conn);
		pg_pipe_drain(s);
		p->open = p->in_txn = 0;
	}
	return status;
}

/*
 * COMMIT and a Sync after everything sent, then the answers to what
 * pg_pipe_begin sent; the requests read theirs next.
 */
static int
pg_pipe_commit(struct store *s)
{
	struct pg *p = s->impl;
	int status;

	status = pg_pipe_send(s, "commit", "COMMIT", 0, NULL, NULL, NULL);
	if (status == STORE_OK && !(p->synced = PQpipelineSync(p->conn)))
		status = pg_fail(s, NULL, "commit");
	if (status == STORE_OK)
		status = pg_pipe_flush(s, "commit");
	if (status == STORE_OK)
		PQclear(pg_pipe_result(s, &status, "begin"));
	if (status == STORE_OK)
		PQclear(pg_pipe_result(s, &status, "begin"));
	if (status == STORE_OK && p->locked)
		PQclear(pg_pipe_result(s, &status, "lock mailboxes"));
	return status;
}

/*
 * Every answer still due, to the Sync's: STORE_OK when COMMIT's says the
 * batch committed.  A failure met on the way (COMMIT's own, or the
 * connection's) is the status.
 */
static int
pg_pipe_to_sync(struct store *s)
{
	PGconn *c = pg_conn(s);
	int committed = 0, status = STORE_OK, failed = 0, nulls = 0;
	PGresult *r;

	for (;;) {
		ExecStatusType t;

		(void)pg_wait(c);	/* a failure: PQgetResult says so at once */
		if ((r = PQgetResult(c)) == NULL) {
			if (PQstatus(c) == CONNECTION_BAD || ++nulls > 2)
				break;	/* nothing more will come */
			continue;	/* the end of one statement's answer */
		}
		nulls = 0;
		t = PQresultStatus(r);
		if (t == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			if (committed)
				return STORE_OK;
			return failed ? status : store_fail(s, STORE_ERROR, "commit: not run after"
			    " an earlier failure");
		}
		if (t == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0)
			committed = 1;
		else if ((t == PGRES_FATAL_ERROR || t == PGRES_BAD_RESPONSE) && !failed) {
			status = pg_fail(s, r, "commit");
			failed = 1;
			continue;
		}
		PQclear(r);
	}
	if (committed)
		return STORE_OK;	/* only the Sync's answer was lost */
	return failed ? status : pg_fail(s, NULL, "commit");
}

/*
 * The end of the pipeline.  With commit, pg_pipe_commit has been called:
 * read what is left and say whether the batch committed (STORE_OK),
 * learning it from the mark when the connection went.  Without, COMMIT
 * never went out: a Sync ends what did, and the batch is rolled back.
 * Either way the connection is back to one command at a time.
 */
static int
pg_pipe_end(struct store *s, int commit)
{
	struct pg *p = s->impl;
	char mark[sizeof(p->mark)];
	int status = STORE_ERROR, retry;

	snprintf(mark, sizeof(mark), "%s", p->mark);
	p->mark[0] = '\0';
	if (!p->synced)		/* the pipeline's end, which pg_pipe_commit did not reach */
		p->synced = PQpipelineSync(p->conn);
	if (commit && p->synced)
		status = pg_pipe_to_sync(s);
	retry = s->retry;
	pg_pipe_drain(s);
	p->in_txn = 0;
	p->open = 0;
	p->synced = 0;
	if (commit && status != STORE_OK && mark[0] && PQstatus(p->conn) == CONNECTION_BAD)
		status = pg_commit_resolve(s, mark);
	else if (PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		pg_exec(s, "rollback", "ROLLBACK", 0, NULL);
	s->retry = retry;
	return status;
}

/* A read view: one snapshot for a group of reads. */
static void
pg_read_begin(struct store *s)
{
	struct pg *p = s->impl;

	if (!p->in_txn && !p->in_read)
		p->in_read = pg_exec(s, "begin", "BEGIN ISOLATION LEVEL REPEATABLE READ"
		    " READ ONLY", 0, NULL) == STORE_OK;
}

static void
pg_read_end(struct store *s)
{
	struct pg *p = s->impl;

	if (p->in_read)
		pg_exec(s, "end", "COMMIT", 0, NULL);
	p->in_read = 0;
}

/* ---- hearing of changes ---- */

static int
pg_listen(struct store *s, const char *channel)
{
	char *id = PQescapeIdentifier(pg_conn(s), channel, strlen(channel)), *sql;
	int status;

	if (id == NULL)
		return pg_fail(s, NULL, "listen");
	sql = xasprintf("LISTEN %s", id);
	PQfreemem(id);
	status = pg_exec(s, "listen", sql, 0, NULL);
	free(sql);
	return status;
}

static int
pg_listen_fd(struct store *s)
{
	return PQsocket(pg_conn(s));
}

/* Never waits: what came in on the socket is taken, its notifications counted. */
static int
pg_notified(struct store *s, const char *channel, int *on)
{
	PGconn *c = pg_conn(s);
	PGnotify *nf;
	int n = 0;

	*on = 0;
	if (!PQconsumeInput(c) || PQstatus(c) == CONNECTION_BAD)
		return -1;
	while ((nf = PQnotifies(c)) != NULL) {
		*on += strcmp(nf->relname, channel) == 0;
		PQfreemem(nf);
		n++;
	}
	return n;
}

const struct store_backend store_pg_backend = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.schema_version = pg_schema_version,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.pipe_begin = pg_pipe_begin,
	.pipe_commit = pg_pipe_commit,
	.pipe_end = pg_pipe_end,
	.deliver_send = pg_deliver_send,
	.deliver_recv = pg_deliver_recv,
	.deliver_resolve = pg_deliver_resolve,
	.read_begin = pg_read_begin,
	.read_end = pg_read_end,
	.domain_add = pg_domain_add,
	.domain_del = pg_domain_del,
	.domain_get = pg_domain_get,
	.domain_set_guard = pg_domain_set_guard,
	.domain_list = pg_domain_list,
	.user_add = pg_user_add,
	.user_set = pg_user_set,
	.user_del = pg_user_del,
	.user_get = pg_user_get,
	.user_list = pg_user_list,
	.alias_add = pg_alias_add,
	.alias_add_members = pg_alias_add_members,
	.alias_del_members = pg_alias_del_members,
	.alias_del = pg_alias_del,
	.alias_get = pg_alias_get,
	.alias_list = pg_alias_list,
	.relay_add = pg_relay_add,
	.relay_set = pg_relay_set,
	.relay_del = pg_relay_del,
	.relay_get = pg_relay_get,
	.relay_list = pg_relay_list,
	.relay_route = pg_relay_route,
	.deliver = pg_deliver,
	.mailbox_list = pg_mailbox_list,
	.entry_get = pg_entry_get,
	.entry_read = pg_entry_read,
	.entries_read = pg_entries_read,
	.reader_open = pg_reader_open,
	.reader_read = pg_reader_read,
	.reader_close = pg_reader_close,
	.entries_delete = pg_entries_delete,
	.entry_set_flags = pg_entry_set_flags,
	.pop3_lock = pg_pop3_lock,
	.pop3_unlock = pg_pop3_unlock,
	.stats = pg_stats,
	.sweep = pg_sweep,
	.check = pg_check,
	.node_claim = pg_node_claim,
	.node_beat = pg_node_beat,
	.node_release = pg_node_release,
	.directory_version = pg_directory_version,
	.listen = pg_listen,
	.listen_fd = pg_listen_fd,
	.notified = pg_notified,
	.queue_list = pg_queue_list,
	.queue_del = pg_queue_del,
	.queue_failed = pg_queue_failed,
	.queue_hold = pg_queue_hold,
	.queue_flush = pg_queue_flush,
	.queue_claim = pg_queue_claim,
	.queue_release_claims = pg_queue_release_claims,
	.queue_renew = pg_queue_renew,
	.queue_next_due = pg_queue_next_due,
	.queue_report = pg_queue_report,
	.queue_deliver_local = pg_queue_deliver_local,
};
