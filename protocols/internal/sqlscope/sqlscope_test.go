package sqlscope

import (
	"bytes"
	"strings"
	"testing"

	"github.com/heliosdb/auth/core"
)

// Scope sets and refusals as the table writes them.
const (
	none = core.ScopeSet(0)
	R    = needRead
	W    = needWrite
	RW   = needRead | needWrite
	S    = needSchema
	RS   = needRead | needSchema
	RWS  = needRead | needWrite | needSchema
	C    = needCreate
	D    = needDelete

	rRole    = RefusedRole
	rAcc     = RefusedAccounts
	rServer  = RefusedServer
	rCode    = RefusedCode
	rDyn     = RefusedDynamic
	rUnknown = RefusedUnknown
	rLex     = RefusedUnreadable
)

type dialects uint8

const (
	pg dialects = 1 << iota
	my
	both = pg | my
)

// cases is the classifier's specification: every statement with the
// dialects it applies to, the scopes it needs and the refusal it gets
// (the scopes are not checked for refused statements). The examples of the
// task that got past the old per-protocol classifiers are marked "old:".
var cases = []struct {
	d       dialects
	q       string
	need    core.ScopeSet
	refused Refusal
}{
	// Reads, in every disguise.
	{both, "SELECT 1", R, 0},
	{both, "select 1", R, 0},
	{both, "SeLeCt 1", R, 0},
	{both, "  \n\tSELECT 1", R, 0},
	{both, ";;; SELECT 1", R, 0},
	{both, "SELECT 1;", R, 0},
	{both, "SELECT 1;;;", R, 0},
	{both, "(SELECT 1)", R, 0},
	{both, "((select 1)) union (select 2)", R, 0},
	{both, "/* c */ SELECT 1", R, 0},
	{both, "SELECT/**/1", R, 0},
	{both, "SELECT 'DELETE FROM t'", R, 0},
	{both, "SELECT 'x; DELETE FROM t'", R, 0},
	{both, "SELECT * FROM t WHERE a = 'it''s; DROP TABLE t'", R, 0},
	{both, "SELECT count(*) FROM t", R, 0},
	{both, "SELECT * FROM (SELECT 1) s", R, 0},
	{both, "SELECT t.delete, t.update FROM t", R, 0},
	{both, "SHOW tables", R, 0},
	{both, "VALUES (1), (2)", R, 0},
	{both, "TABLE t", R, 0},
	{both, "WITH x AS (SELECT 1) SELECT * FROM x", R, 0},
	{both, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 5) SELECT * FROM r", R, 0},
	{both, "EXPLAIN SELECT * FROM t", R, 0},
	{both, "EXPLAIN DELETE FROM t", R, 0},
	{both, "EXPLAIN ANALYZE SELECT 1", R, 0},
	{both, "EXECUTE p", R, 0},
	{both, "SELECT 1 -- ; DELETE FROM t", R, 0},
	{both, "SELECT 1 /* ; DELETE FROM t */", R, 0},
	{both, "SELECT @@global.max_connections", R, 0},
	{both, "SELECT set_config('search_path', 'x', false)", R, 0},
	{both, "SELECT role FROM users", R, 0},
	// Data changes.
	{both, "INSERT INTO t VALUES (1)", W, 0},
	{both, "INSERT INTO t VALUES ('SELECT')", W, 0},
	{both, "INSERT INTO t SELECT * FROM u", RW, 0},
	{both, "insert into t (a) values (1) returning a", RW, 0},
	{both, "UPDATE t SET a = 1 WHERE b = 2", RW, 0},
	{both, "UPDATE t SET a = (SELECT max(a) FROM u)", RW, 0},
	{both, "UPDATE users SET role = 'admin'", RW, 0},
	{both, "DELETE FROM t", RW, 0},
	{both, "delete from t where a in (select a from u)", RW, 0},
	{both, "DELETE FROM t WHERE a = '; SELECT 1'", RW, 0},
	{both, "TRUNCATE t", W, 0},
	{both, "TRUNCATE TABLE t", W, 0},
	{both, "CALL p()", RW, 0},
	{both, "LOCK TABLE t", W, 0},
	{both, "SELECT delete FROM t", RW, 0}, // a column named like a statement: fails closed
	{both, "SELECT * FROM t FOR UPDATE", RW, 0},
	{both, "SELECT * FROM t FOR SHARE", RW, 0},
	{both, "SELECT 1 FROM t WHERE a IN (DELETE FROM u RETURNING a)", RW, 0},
	// Multi-statement strings (old: MySQL and REST let these through).
	{both, "SELECT 1; DELETE FROM t", RW, 0},
	{both, "SELECT 1;DELETE FROM t;", RW, 0},
	{both, "DELETE FROM t; SELECT 1", RW, 0},
	{both, "SELECT 1; SELECT 2; UPDATE t SET a=1", RW, 0},
	{both, "SELECT\n1\n;\nDELETE\nFROM\nt", RW, 0},
	{both, "SELECT 1; CREATE USER u", none, rAcc},
	// Data-modifying CTEs (old: PostgreSQL, MySQL).
	{both, "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", RW, 0},
	{both, "WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT 1", RW, 0},
	{both, "WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT 1", RW, 0},
	{both, "with x as (select 1) , y as (delete from t returning 1) select 1", RW, 0},
	{both, "WITH x AS (SELECT 1) DELETE FROM t", RW, 0},
	{both, "WITH x AS (SELECT 1) UPDATE t SET a = 1", RW, 0},
	{both, "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", RW, 0},
	// EXPLAIN ANALYZE runs its statement (old: PostgreSQL, REST).
	{both, "EXPLAIN ANALYZE DELETE FROM t", RW, 0},
	{both, "explain analyze update t set a = 1", RW, 0},
	{both, "EXPLAIN ANALYZE INSERT INTO t VALUES (1)", RW, 0},
	// Transactions and session settings: no scope.
	{both, "BEGIN", none, 0},
	{both, "COMMIT", none, 0},
	{both, "ROLLBACK", none, 0},
	{both, "START TRANSACTION", none, 0},
	{both, "SAVEPOINT s", none, 0},
	{both, "RELEASE SAVEPOINT s", none, 0},
	{both, "ROLLBACK TO SAVEPOINT s", none, 0},
	{both, "DEALLOCATE p", none, 0},
	{both, "SET x = 1", none, 0},
	{both, "SET SESSION x = 1", none, 0},
	{both, "SET @a = (SELECT 1)", R, 0},
	// DDL.
	{both, "CREATE TABLE t (a int)", S, 0},
	{both, "create table t (a int references u on delete cascade)", S, 0},
	{both, "CREATE TEMPORARY TABLE t (a int)", S, 0},
	{both, "ALTER TABLE t ADD COLUMN b int", S, 0},
	{both, "DROP TABLE t", S, 0},
	{both, "DROP TABLE IF EXISTS t", S, 0},
	{both, "CREATE INDEX i ON t (a)", S, 0},
	{both, "CREATE UNIQUE INDEX i ON t (a)", S, 0},
	{both, "DROP INDEX i ON t", S, 0},
	{both, "CREATE VIEW v AS SELECT * FROM t", S, 0},
	{both, "CREATE OR REPLACE VIEW v AS SELECT 1", S, 0},
	{both, "DROP VIEW v", S, 0},
	{both, "CREATE TABLE t2 AS SELECT * FROM t", RWS, 0},
	{both, "GRANT SELECT ON t TO u", S, 0},
	{both, "REVOKE INSERT, UPDATE ON t FROM u", S, 0},
	{both, "CREATE DATABASE d", C, 0},
	{both, "create database if not exists d", C, 0},
	{both, "DROP DATABASE d", D, 0},
	{both, "DROP DATABASE IF EXISTS d", D, 0},
	// Refused for everyone.
	{both, "frobnicate", none, rUnknown},
	{both, "CREATE FROBNICATOR f", none, rUnknown},
	{both, "'just a string'", none, rUnknown},
	{both, "SELECT 'abc", none, rLex},
	{both, "SELECT \"abc", none, rLex},
	{both, "SELECT 1 /* open", none, rLex},
	{both, "SELECT 1\x00; DELETE FROM t", none, rLex},
	{both, "CREATE USER u", none, rAcc},
	{both, "DROP USER u", none, rAcc},
	{both, "ALTER USER u", none, rAcc},
	{both, "CREATE ROLE r", none, rAcc},
	{both, "DROP ROLE r", none, rAcc},
	{both, "CREATE TABLESPACE ts ADD DATAFILE 'x'", none, rServer},

	// PostgreSQL.
	{pg, "SELECT * INTO newt FROM t", RWS, 0}, // old: PostgreSQL, REST
	{pg, "SELECT * INTO TEMP newt FROM t", RWS, 0},
	{pg, "select a into unlogged table newt from t", RWS, 0},
	{pg, "INSERT INTO t SELECT 1", RW, 0},
	{pg, "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = 1", RW, 0},
	{pg, "PREPARE p AS DELETE FROM t", RW, 0}, // old: PostgreSQL
	{pg, "PREPARE p (int) AS SELECT $1", R, 0},
	{pg, "PREPARE p(int, text) AS INSERT INTO t VALUES ($1, $2)", W, 0},
	{pg, "PREPARE p AS SET ROLE postgres", none, rRole},
	{pg, "PREPARE TRANSACTION 'x'", none, 0},
	{pg, "COMMIT PREPARED 'x'", none, 0},
	{pg, "SET ROLE postgres", none, rRole}, // old: PostgreSQL
	{pg, "set role postgres", none, rRole},
	{pg, "SET SESSION AUTHORIZATION postgres", none, rRole}, // old: PostgreSQL
	{pg, "SET LOCAL ROLE postgres", none, rRole},
	{pg, "SET SESSION ROLE postgres", none, rRole},
	{pg, "SET role = 'postgres'", none, rRole},
	{pg, "SET role TO postgres", none, rRole},
	{pg, "SET \"role\" = 'postgres'", none, rRole},
	{pg, "SET \"ROLE\" = 'postgres'", none, rRole},
	{pg, "SET session_authorization = 'postgres'", none, rRole},
	{pg, "SELECT 1; SET ROLE postgres", none, rRole},
	{pg, "RESET ROLE", none, rRole},
	{pg, "RESET SESSION AUTHORIZATION", none, rRole},
	{pg, "reset role", none, rRole},
	{pg, "RESET session_authorization", none, rRole},
	{pg, "RESET ALL", none, 0},
	{pg, "RESET search_path", none, 0},
	{pg, "DISCARD ALL", none, rRole},
	{pg, "DISCARD PLANS", none, 0},
	{pg, "SET search_path = public", none, 0},
	{pg, "SET search_path TO myschema, public", none, 0},
	{pg, "SET client_encoding = 'UTF8'", none, 0},
	{pg, "SET NAMES 'UTF8'", none, 0},
	{pg, "SET TIME ZONE 'UTC'", none, 0},
	{pg, "SET statement_timeout = 0", none, 0},
	{pg, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", none, 0},
	{pg, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", none, 0},
	{pg, "SET CONSTRAINTS ALL DEFERRED", none, 0},
	{pg, "SELECT set_config('role', 'postgres', false)", none, rRole},
	{pg, "select pg_catalog.set_config('ROLE', 'postgres', false)", none, rRole},
	{pg, "SELECT set_config('session_authorization', 'x', false)", none, rRole},
	{pg, "SELECT set_config(E'rol\\x65', 'x', false)", none, rRole},
	{pg, "SELECT set_config($$role$$, 'x', false)", none, rRole},
	{pg, "SELECT set_config('role'::text, 'x', false)", none, rRole},
	{pg, "SELECT set_config(name, 'x', false) FROM t", none, rDyn},
	{pg, "SELECT set_config(setting_name => 'role', new_value => 'x', is_local => false)", none, rDyn},
	{pg, "SELECT * FROM set_config('role', 'x', false)", none, rRole},
	{pg, "SELECT \"set_config\"('role', 'x', false)", none, rRole},
	{pg, "SELECT 1 WHERE set_config('role', 'x', true) IS NOT NULL", none, rRole},
	{pg, "SELECT U&\"set\\005fconfig\"('role', 'x', false)", none, rDyn},
	{pg, "SET U&\"rol\\0065\" = 'postgres'", none, rDyn},
	{pg, "SET U&\"rol!0065\" UESCAPE '!' = 'postgres'", none, rDyn},
	{pg, "SET U&\"role\" = 'postgres'", none, rRole},
	{pg, "RESET U&\"rol\\0065\"", none, rDyn},
	{pg, "SELECT U&\"a\" FROM t", R, 0},
	{pg, "ALTER SYSTEM SET work_mem = '1GB'", none, rServer},
	{pg, "LOAD 'auto_explain'", none, rCode},
	{pg, "CHECKPOINT", none, rServer},
	{pg, "ALTER DATABASE d SET role = 'postgres'", none, rRole},
	{pg, "ALTER DATABASE d RENAME TO e", S, 0},
	{pg, "ALTER FUNCTION f() SET role = 'postgres'", none, rRole},
	{pg, "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET role = 'x' AS 'SELECT 1'", none, rRole},
	{pg, "CREATE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql", S, 0},
	{pg, "ALTER TABLE users ALTER COLUMN role SET DEFAULT 'user'", S, 0},
	{pg, "COPY t FROM STDIN", W, 0},
	{pg, "COPY t (a, b) FROM STDIN WITH (FORMAT csv)", W, 0},
	{pg, "COPY t TO STDOUT", R, 0},
	{pg, "COPY (SELECT * FROM t) TO STDOUT", R, 0},
	{pg, "COPY (DELETE FROM t RETURNING *) TO STDOUT", RW, 0},
	{pg, "COPY t FROM PROGRAM 'curl x'", none, rCode},
	{pg, "COPY t TO PROGRAM 'rm -rf /'", none, rCode},
	{pg, "COPY t FROM '/etc/passwd'", W, 0},
	{pg, "COPY t", none, rUnknown},
	{pg, "DO $$ BEGIN RAISE NOTICE 'x'; END $$", RW, 0},
	{pg, "DO $$BEGIN DELETE FROM t; END$$", RW, 0},
	{pg, "DO $$ BEGIN EXECUTE 'SET ROLE postgres'; END $$", none, rRole},
	{pg, "DO $$ BEGIN EXECUTE format('SET ROLE %s', 'x'); END $$", none, rDyn},
	{pg, "DO $$ BEGIN EXECUTE 'DROP TABLE ' || t; END $$", none, rDyn},
	{pg, "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", RWS, 0},
	{pg, "DO $$ BEGIN PERFORM set_config('role', 'x', false); END $$", none, rRole},
	{pg, "DO $$ BEGIN SET ROLE postgres; END $$", none, rRole},
	{pg, "DO $$ BEGIN CREATE TABLE x (a int); END $$", RWS, 0},
	{pg, "DO $$ DECLARE r record; BEGIN FOR r IN SELECT * FROM t LOOP NULL; END LOOP; END $$", RW, 0},
	{pg, "DO $$ BEGIN UPDATE users SET role = 'x'; END $$", RW, 0},
	{pg, "DO $$ DECLARE n int; BEGIN SELECT count(*) INTO n FROM t; END $$", RW, 0},
	{pg, "DO 'BEGIN NULL; END'", RW, 0},
	{pg, "DO LANGUAGE plpython3u $$ plpy.execute('SET ROLE x') $$", none, rCode},
	{pg, "DO $$ BEGIN NULL; END $$ LANGUAGE plpgsql", RW, 0},
	{pg, "DO $$ x $$", RW, rUnknown},
	// Quote confusion (old: PostgreSQL and REST).
	{pg, "SELECT $$;$$; DELETE FROM t", RW, 0},
	{pg, "SELECT $$ ' $$; DELETE FROM t; --'", RW, 0},
	{pg, "SELECT $tag$ $$ ; $tag$; DELETE FROM t", RW, 0},
	{pg, "SELECT $a$ $A$; $a$; DELETE FROM t", RW, 0},
	{pg, "SELECT E'\\''; DELETE FROM t; --'", RW, 0},
	{pg, "SELECT e'\\\\'; DELETE FROM t", RW, 0},
	{pg, "SELECT E'\\'; DELETE FROM t; --'", R, 0}, // one string: \' is a quote
	{pg, "SELECT 'a\\'; DELETE FROM t; --'", RW, 0},
	{pg, "SELECT 'a\\'; SELECT '; DELETE FROM t; --'", RW, 0}, // standard_conforming_strings off reads a DELETE
	{pg, "SELECT B''; DELETE FROM t; --'", RW, 0},
	{pg, "SELECT X'1'; DELETE FROM t", RW, 0},
	{pg, "SELECT U&'d\\0061t'; DELETE FROM t", RW, 0},
	{pg, "SELECT 1e'\\''; DELETE FROM t; --'", RW, 0},
	{pg, "SELECT a$$; DELETE FROM t; --$$", RW, 0},
	{pg, "SELECT \"a\"\"; DELETE FROM t\"", R, 0},
	{pg, "/* /* nested */ DELETE FROM t; */ SELECT 1", R, 0},
	{pg, "SELECT 1 --x; DELETE FROM t", R, 0},
	{pg, "-- DELETE FROM t\nSELECT 1", R, 0}, // old: REST refused this as a write
	{pg, "--DELETE FROM t\r SELECT 1", R, 0},
	{pg, "SELECT 'x' /* ' */; DELETE FROM t", RW, 0},
	{pg, "SELECT $1; DELETE FROM t", RW, 0},
	{pg, "SELECT $$unterminated", none, rLex},
	{pg, "SELECT E'\\", none, rLex},
	{pg, "SELECT 1 /* /* */", none, rLex},
	{pg, "SELECT '\xbf\\'; DELETE FROM t; --'", RW, 0}, // GBK client encoding: 0xbf5c is one character
	// Cursors, notifications, maintenance.
	{pg, "DECLARE c CURSOR FOR SELECT * FROM t", R, 0},
	{pg, "DECLARE c CURSOR WITH HOLD FOR DELETE FROM t RETURNING *", RW, 0},
	{pg, "FETCH 10 FROM c", R, 0},
	{pg, "CLOSE c", none, 0},
	{pg, "LISTEN ch", R, 0},
	{pg, "UNLISTEN *", none, 0},
	{pg, "NOTIFY ch, 'x'", W, 0},
	{pg, "VACUUM t", W, 0},
	{pg, "ANALYZE t", W, 0},
	{pg, "VACUUM FULL ANALYZE t", W, 0},
	{pg, "CLUSTER t", S, 0},
	{pg, "REINDEX TABLE t", S, 0},
	{pg, "REFRESH MATERIALIZED VIEW m", RW, 0},
	{pg, "LOCK t IN ACCESS EXCLUSIVE MODE", W, 0},
	{pg, "END", none, 0},
	{pg, "ABORT", none, 0},
	{pg, "SHOW ALL", R, 0},
	{pg, "SELECT replace('a', 'b', 'c')", R, 0},
	{pg, "SELECT nextval('s')", R, 0}, // a function that writes: left to the database's privileges
	{pg, "SELECT * FROM t FOR KEY SHARE", RW, 0},
	{pg, "SELECT * FROM t FOR NO KEY UPDATE", RW, 0},
	{pg, "EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t", RW, 0},
	{pg, "EXPLAIN (ANALYZE false) DELETE FROM t", RW, 0}, // any ANALYZE counts
	{pg, "EXPLAIN (FORMAT JSON) DELETE FROM t", R, 0},
	{pg, "EXPLAIN VERBOSE DELETE FROM t", R, 0},
	{pg, "EXPLAIN ANALYZE VERBOSE DELETE FROM t", RW, 0},
	{pg, "EXPLAIN ANALYZE WITH x AS (DELETE FROM t RETURNING *) SELECT 1", RW, 0},
	{pg, "EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT 1", RWS, 0},
	{pg, "EXPLAIN ANALYZE SELECT * INTO t2 FROM t", RWS, 0},
	{pg, "EXPLAIN SELECT set_config('role', 'x', false)", none, rRole},
	// PostgreSQL DDL.
	{pg, "COMMENT ON TABLE t IS 'x'", S, 0},
	{pg, "CREATE SCHEMA s", S, 0},
	{pg, "DROP SCHEMA s", S, 0},
	{pg, "CREATE MATERIALIZED VIEW m AS SELECT * FROM t", RWS, 0},
	{pg, "CREATE TABLE t2 AS TABLE t", RWS, 0},
	{pg, "CREATE TABLE t2 AS VALUES (1)", RWS, 0},
	{pg, "CREATE TABLE t2 (LIKE t)", S, 0},
	{pg, "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (1) TO (10)", S, 0},
	{pg, "CREATE EXTENSION pgcrypto", S, 0},
	{pg, "CREATE SEQUENCE s", S, 0},
	{pg, "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", S, 0},
	{pg, "CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM u", RWS, 0},
	{pg, "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", RS, 0},
	{pg, "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM t; SELECT 1; END", RWS, 0},
	{pg, "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC UPDATE t SET a = 1; END; DELETE FROM u", RWS, 0},
	{pg, "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT 1; END; SET ROLE postgres", none, rRole},
	{pg, "CREATE ROLE evil SUPERUSER", none, rAcc},
	{pg, "ALTER ROLE r SET role = x", none, rAcc},
	{pg, "CREATE GROUP g", none, rAcc},
	{pg, "REASSIGN OWNED BY a TO b", none, rAcc},
	{pg, "DROP OWNED BY a", S, 0},
	{pg, "CREATE USER MAPPING FOR u SERVER s", S, 0},
	{pg, "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw", S, 0},
	{pg, "IMPORT FOREIGN SCHEMA s FROM SERVER x INTO y", S, 0},
	{pg, "SECURITY LABEL ON TABLE t IS 'x'", S, 0},
	{pg, "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO u", S, 0},
	{pg, "CREATE AGGREGATE a (int) (sfunc = f, stype = int)", S, 0},
	{pg, "CREATE TYPE ty AS (a int)", S, 0},
	{pg, "DROP TABLESPACE ts", none, rServer},
	{pg, "REPLACE INTO t VALUES (1)", none, rUnknown},
	{pg, "USE db", none, rUnknown},
	{pg, "DESCRIBE t", none, rUnknown},

	// MySQL.
	{my, "SELECT 1 INTO OUTFILE '/tmp/x'", RW, 0}, // old: MySQL
	{my, "SELECT * FROM t INTO DUMPFILE '/tmp/x'", RW, 0},
	{my, "SELECT a INTO @a FROM t", R, 0},
	{my, "SELECT a, b INTO @a, @b FROM t", R, 0},
	{my, "SELECT * INTO newt FROM t", RW, 0},
	{my, "REPLACE INTO t VALUES (1)", W, 0},
	{my, "REPLACE t SET a = 1", W, 0},
	{my, "INSERT IGNORE INTO t VALUES (1)", W, 0},
	{my, "INSERT LOW_PRIORITY IGNORE INTO t VALUES (1)", W, 0},
	{my, "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 2", RW, 0},
	{my, "INSERT INTO t SET a = 1", W, 0},
	{my, "LOAD DATA INFILE '/x' INTO TABLE t", RW, 0},
	{my, "LOAD DATA LOCAL INFILE 'x' REPLACE INTO TABLE t", W, 0},
	{my, "SELECT REPLACE(a, 'x', 'y') FROM t", R, 0},
	{my, "SELECT INSERT('abc', 1, 1, 'x')", R, 0},
	{my, "select 1--1", R, 0},
	{my, "SELECT 1 --x; DELETE FROM t", RW, 0}, // --x is two minus signs in MySQL
	{my, "SELECT 1 -- x; DELETE FROM t", R, 0},
	{my, "SELECT 1 #; DELETE FROM t", R, 0},
	{my, "SELECT 1 # c\nDELETE FROM t", RW, 0},
	{my, "SELECT 1 --\tx; DELETE FROM t", R, 0},
	// Executable comments are code.
	{my, "/*!50000 DELETE FROM t */", RW, 0},
	{my, "/*! DELETE FROM t */", RW, 0},
	{my, "SELECT 1 /*! ; DELETE FROM t */", RW, 0},
	{my, "SELECT 1 /*!50000 ; DELETE FROM t */", RW, 0},
	{my, "/*M! DELETE FROM t */", RW, 0},
	{my, "SELECT 1 /*!99999 ' */ ; DELETE FROM t; -- ' */", RW, 0}, // a server older than 9.99.99 skips the comment
	{my, "SELECT 1 /*+ MAX_EXECUTION_TIME(1) */", R, 0},
	{my, "SELECT 1 /* /* */ ; DELETE FROM t; -- */", RW, 0}, // MySQL comments do not nest
	{my, "/*!50000 /*!50000 SELECT 1 */ */", none, rLex},
	{my, "SELECT 1 /*!50000 DELETE FROM t", none, rLex},
	// Quote confusion.
	{my, "SELECT 'a\\'; DELETE FROM t; -- '", RW, 0}, // NO_BACKSLASH_ESCAPES reads a DELETE
	{my, "SELECT 'a\\''; DELETE FROM t; -- '", RW, 0},
	{my, "SELECT \"a\\\"; DELETE FROM t; -- \"", RW, 0}, // ANSI_QUOTES reads a DELETE
	{my, "SELECT `a`; DELETE FROM t", RW, 0},
	{my, "SELECT `a``; DELETE FROM t`", R, 0},
	{my, "SELECT x'41'; DELETE FROM t", RW, 0},
	{my, "SELECT x'zz'", none, rLex},
	{my, "SELECT _utf8mb4'x'; DELETE FROM t", RW, 0},
	{my, "SELECT N'x'; DELETE FROM t", RW, 0},
	{my, "SELECT 0x'; DELETE FROM t; -- '", R, 0},
	{my, "SELECT '\xbf\\'; DELETE FROM t; -- '", RW, 0},    // GBK: 0xbf5c is one character
	{my, "SELECT `a\x81` b `; DELETE FROM t; -- `", RW, 0}, // GBK: 0x8160 is one character
	{my, "SELECT '\x95\\'; DELETE FROM t; -- '", RW, 0},    // Shift_JIS
	{my, "SELECT 'caf\xc3\xa9\\n'; SELECT 1", R, 0},        // UTF-8 before an escape: still one string
	// PREPARE.
	{my, "PREPARE s FROM 'DELETE FROM t'", RW, 0},
	{my, "PREPARE s FROM 'SELECT 1'", R, 0},
	{my, "PREPARE s FROM \"DELETE FROM t\"", RW, 0},
	{my, "PREPARE s FROM 'SELECT ''x''; DELETE FROM t'", RW, 0},
	{my, "PREPARE s FROM 'SELECT \\'x\\'; DELETE FROM t'", RW, 0},
	{my, "PREPARE s FROM 'DELETE ' 'FROM t'", RW, 0},
	{my, "PREPARE s FROM 'SET GLOBAL x = 1'", none, rServer},
	{my, "PREPARE s FROM @v", none, rDyn},
	{my, "PREPARE s FROM @`v`", none, rDyn},
	{my, "PREPARE s FROM 'SELECT 1' || @x", none, rDyn},
	{my, "EXECUTE s USING @a", R, 0},
	{my, "EXECUTE IMMEDIATE 'DELETE FROM t'", RW, 0},
	{my, "EXECUTE IMMEDIATE CONCAT('DELETE ', 'FROM t')", none, rDyn},
	{my, "EXECUTE IMMEDIATE @sql", none, rDyn},
	{my, "BEGIN NOT ATOMIC DELETE FROM t; END", RW, 0},
	{my, "BEGIN NOT ATOMIC SELECT 1; END; SET GLOBAL x = 1", none, rServer},
	{my, "BEGIN WORK", none, 0},
	// Another reading stops at what no server would run: go-sql-driver's
	// and PHP's backslash escapes of values are not refused for it.
	{my, "INSERT INTO t VALUES ('It\\'s; ok', 'b\\'c')", W, 0},
	{my, "SELECT * FROM t WHERE a = 'x\\'; DELETE FROM t; -- '", RW, 0},
	{my, "DEALLOCATE PREPARE s", none, 0},
	{my, "DROP PREPARE s", none, 0},
	// SET.
	{my, "SET GLOBAL max_connections = 1", none, rServer},
	{my, "SET PERSIST max_connections = 1", none, rServer},
	{my, "SET PERSIST_ONLY x = 1", none, rServer},
	{my, "SET @@global.max_connections = 1", none, rServer},
	{my, "SET @@GLOBAL.sql_mode = ''", none, rServer},
	{my, "SET @@persist.x = 1", none, rServer},
	{my, "SET @@`global`.x = 1", none, rServer},
	{my, "SET autocommit = 1, GLOBAL max_connections = 1", none, rServer},
	{my, "SET @x = @@global.time_zone", none, rServer}, // fails closed: reads look like writes here
	{my, "SET SESSION sql_mode = 'ANSI'", none, 0},
	{my, "SET @@session.sql_mode = ''", none, 0},
	{my, "SET NAMES utf8mb4", none, 0},
	{my, "SET CHARACTER SET utf8", none, 0},
	{my, "SET autocommit=0", none, 0},
	{my, "SET @a = 1", none, 0},
	{my, "SET @a = (SELECT count(*) FROM t)", R, 0},
	{my, "SET ROLE r", none, rRole},
	{my, "SET DEFAULT ROLE r TO u", none, rRole},
	{my, "SET PASSWORD = 'x'", none, rAcc},
	{my, "SET PASSWORD FOR u = 'x'", none, rAcc},
	{my, "SET RESOURCE GROUP g", none, rServer},
	{my, "SET SESSION AUTHORIZATION postgres", none, rRole},
	{my, "SET autocommit = 1, ROLE admin", none, rRole},
	{my, "SET @role = 'admin', @x = @role", none, 0},
	{my, "SET @r = (SELECT role FROM users LIMIT 1)", R, 0},
	{my, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", none, 0},
	{my, "SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED", none, rServer},
	// Other MySQL statements.
	{my, "USE db", R, 0},
	{my, "SHOW DATABASES", R, 0},
	{my, "SHOW CREATE TABLE t", R, 0},
	{my, "DESCRIBE t", R, 0},
	{my, "DESC t", R, 0},
	{my, "EXPLAIN t", R, 0},
	{my, "EXPLAIN FORMAT=JSON DELETE FROM t", R, 0},
	{my, "EXPLAIN ANALYZE SELECT * FROM t", R, 0},
	{my, "DESCRIBE ANALYZE DELETE FROM t", RW, 0},
	{my, "ANALYZE TABLE t", W, 0},
	{my, "ANALYZE DELETE FROM t", RW, 0}, // MariaDB runs it
	{my, "ANALYZE SELECT 1", R, 0},
	{my, "OPTIMIZE TABLE t", W, 0},
	{my, "REPAIR TABLE t", W, 0},
	{my, "CHECK TABLE t", R, 0},
	{my, "CHECKSUM TABLE t", R, 0},
	{my, "HANDLER t OPEN", R, 0},
	{my, "LOCK TABLES t READ", W, 0},
	{my, "UNLOCK TABLES", none, 0},
	{my, "LOCK INSTANCE FOR BACKUP", none, rServer},
	{my, "FLUSH PRIVILEGES", none, rServer},
	{my, "FLUSH TABLES WITH READ LOCK", none, rServer},
	{my, "SHUTDOWN", none, rServer},
	{my, "RESTART", none, rServer},
	{my, "KILL 5", W, 0},
	{my, "KILL QUERY 5", W, 0},
	{my, "INSTALL PLUGIN p SONAME 'x.so'", none, rServer},
	{my, "UNINSTALL PLUGIN p", none, rServer},
	{my, "CREATE FUNCTION f RETURNS STRING SONAME 'evil.so'", none, rCode},
	{my, "CREATE AGGREGATE FUNCTION f RETURNS INTEGER SONAME 'x.so'", none, rCode},
	{my, "CHANGE REPLICATION SOURCE TO SOURCE_HOST='x'", none, rServer},
	{my, "CHANGE MASTER TO MASTER_HOST='x'", none, rServer},
	{my, "START REPLICA", none, rServer},
	{my, "START SLAVE", none, rServer},
	{my, "STOP REPLICA", none, rServer},
	{my, "RESET MASTER", none, rServer},
	{my, "PURGE BINARY LOGS TO 'x'", none, rServer},
	{my, "CLONE INSTANCE FROM 'u'@'h':3306 IDENTIFIED BY 'x'", none, rServer},
	{my, "BINLOG 'x'", none, rServer},
	{my, "IMPORT TABLE FROM '/tmp/t.sdi'", none, rServer},
	{my, "RENAME TABLE a TO b", S, 0},
	{my, "RENAME USER a TO b", none, rAcc},
	{my, "CREATE USER 'u'@'%' IDENTIFIED BY 'x'", none, rAcc},
	{my, "GRANT ALL ON *.* TO 'u'@'%'", S, 0},
	{my, "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'x')", none, rServer},
	{my, "CREATE LOGFILE GROUP g ADD UNDOFILE 'x'", none, rServer},
	{my, "ALTER INSTANCE ROTATE INNODB MASTER KEY", none, rServer},
	{my, "ALTER DATABASE d CHARACTER SET utf8mb4", S, 0},
	{my, "CREATE SCHEMA s", C, 0},
	{my, "DROP SCHEMA s", D, 0},
	{my, "DROP SCHEMA IF EXISTS s", D, 0},
	{my, "CREATE TABLE t2 SELECT * FROM t", RWS, 0},
	{my, "CREATE TABLE t (s SET('a','b'))", S, 0},
	{my, "XA START 'x'", none, 0},
	{my, "HELP 'select'", none, 0},
	{my, "DO SLEEP(1)", W, 0},
	{my, "CALL p(1)", RW, 0},
	{my, "VALUES ROW(1, 2)", R, 0},
	{my, "SELECT * FROM t LOCK IN SHARE MODE", RW, 0},
	{my, "DELIMITER //", none, rUnknown},
	{my, "COPY t FROM STDIN", none, rUnknown},
	{my, "DISCARD ALL", none, rUnknown},
	// Routines, triggers, events: the body is classified too.
	{my, "CREATE DEFINER=`root`@`localhost` PROCEDURE p() SELECT 1", RS, 0},
	{my, "CREATE DEFINER = 'root'@'%' VIEW v AS SELECT 1", S, 0},
	{my, "CREATE DEFINER = CURRENT_USER() VIEW v AS SELECT 1", S, 0},
	{my, "CREATE ALGORITHM=MERGE VIEW v AS SELECT 1", S, 0},
	{my, "CREATE SQL SECURITY INVOKER VIEW v AS SELECT 1", S, 0},
	{my, "CREATE PROCEDURE p() BEGIN SELECT 1; END", RS, 0},
	{my, "CREATE PROCEDURE p() BEGIN UPDATE t SET a = 1; END", RWS, 0},
	{my, "CREATE PROCEDURE p() BEGIN IF 1 THEN DELETE FROM t; END IF; END", RWS, 0},
	{my, "CREATE PROCEDURE p() BEGIN SET GLOBAL x = 1; END", none, rServer},
	{my, "CREATE PROCEDURE p() BEGIN DECLARE x INT DEFAULT 0; WHILE x < 3 DO SET x = x + 1; END WHILE; END", S, 0},
	{my, "CREATE PROCEDURE p() BEGIN DECLARE c INT; SELECT count(*) INTO c FROM t; END", RS, 0},
	{my, "CREATE PROCEDURE p() BEGIN DECLARE CONTINUE HANDLER FOR SQLEXCEPTION SET @x = 1; UPDATE users SET password = 'x'; END", RWS, 0},
	{my, "CREATE PROCEDURE p() BEGIN DECLARE CONTINUE HANDLER FOR SQLEXCEPTION SET GLOBAL x = 1; END", none, rServer},
	{my, "CREATE PROCEDURE p() BEGIN lbl: LOOP LEAVE lbl; END LOOP lbl; END", S, 0},
	{my, "CREATE PROCEDURE p() BEGIN CASE WHEN 1 THEN SELECT 1; ELSE DROP DATABASE d; END CASE; END", none | RS | D, 0},
	{my, "CREATE PROCEDURE p() BEGIN PREPARE s FROM @q; EXECUTE s; END", none, rDyn},
	{my, "CREATE PROCEDURE p() BEGIN END; DELETE FROM t", RWS, 0},
	{my, "CREATE PROCEDURE p() BEGIN SELECT 1; END; SET GLOBAL x = 1", none, rServer},
	{my, "CREATE PROCEDURE p() BEGIN IF x THEN CREATE USER u; END IF; END", none, rAcc},
	{my, "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1", W | S, 0}, // its header names INSERT: fails closed
	{my, "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", RWS, 0},
	{my, "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SET GLOBAL x = 1", none, rServer},
	{my, "ALTER EVENT e DO DELETE FROM t", RWS, 0},
	{my, "DROP PROCEDURE p", S, 0},
}

func (d dialects) each(f func(Dialect)) {
	if d&pg != 0 {
		f(PostgreSQL)
	}
	if d&my != 0 {
		f(MySQL)
	}
}

func dialectName(d Dialect) string {
	if d == PostgreSQL {
		return "postgres"
	}
	return "mysql"
}

func TestClassifyTable(t *testing.T) {
	if len(cases) < 200 {
		t.Fatalf("%d statements in the table, want at least 200", len(cases))
	}
	n := 0
	for _, c := range cases {
		c.d.each(func(d Dialect) {
			n++
			r := Classify(d, []byte(c.q))
			// The plain-text path takes a text with one ';' at its end.
			for _, q := range []string{c.q, c.q + ";", c.q + " ;\n", c.q + ";;", c.q + "; ;"} {
				rq := Classify(d, []byte(q))
				if rw := walk(d, []byte(q), 0, false); rw.Need != rq.Need || rw.Refused != rq.Refused || rw.Statements != rq.Statements {
					t.Errorf("%s %q: the plain-text path and the walker disagree: %+v %+v", dialectName(d), q, rq, rw)
				}
			}
			if r.Refused != c.refused || c.refused == 0 && r.Need != c.need {
				t.Errorf("%s %q: need %v refused %q; want %v refused %q", dialectName(d), c.q,
					r.Need.Strings(), r.Refused, c.need.Strings(), c.refused)
			}
		})
	}
	t.Logf("%d statements, %d classifications", len(cases), n)
}

// TestEmpty: whitespace, comments and semicolons are no statement at all.
func TestEmpty(t *testing.T) {
	for _, q := range []string{"", "   ", ";", " ; ;; ", "-- only a comment", "/* c */", "/* a */ ; -- b\n"} {
		both.each(func(d Dialect) {
			r := Classify(d, []byte(q))
			if r.Need != 0 || r.Refused != 0 || r.Statements != 0 {
				t.Errorf("%s %q: %+v", dialectName(d), q, r)
			}
		})
	}
}

func TestStatementsCount(t *testing.T) {
	for q, want := range map[string]int{
		"SELECT 1": 1, "SELECT 1;": 1, ";SELECT 1;;SELECT 2;": 2, "SELECT ';'": 1, "SELECT (1; 2)": 1,
		"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)": 1,
	} {
		if r := Classify(PostgreSQL, []byte(q)); r.Statements != want {
			t.Errorf("%q: %d statements, want %d", q, r.Statements, want)
		}
	}
}

// TestDeny: the first missing scope, in the guide's order, is named, with
// the statement that needed it; refusals come before scopes.
func TestDeny(t *testing.T) {
	read := core.ScopeSet(0).With(core.ScopeDatabaseRead)
	r := Classify(MySQL, []byte("SELECT 1; WITH x AS (SELECT 1) DELETE FROM t"))
	d, denied := r.Deny(read)
	if !denied || d.Scope != core.ScopeDatabaseWrite || d.Verb != "DELETE" || d.Database ||
		d.Err.Message != "Token does not have required scope: database:write" || d.Err != core.ForbiddenError(core.ScopeDatabaseWrite) {
		t.Fatalf("%+v %v", d, denied)
	}
	if _, denied := r.Deny(core.AllScopes); denied {
		t.Fatal("a full token was denied")
	}
	r = Classify(MySQL, []byte("DROP DATABASE `a``b`"))
	if d, _ := r.Deny(read); d.Scope != core.ScopeDatabaseDelete || !d.Database || string(d.Target) != "a`b" || d.Verb != "DROP" {
		t.Fatalf("%+v", d)
	}
	r = Classify(MySQL, []byte("USE `my db`"))
	if d, _ := r.Deny(0); d.Scope != core.ScopeDatabaseRead || !d.Database || string(d.Target) != "my db" || d.Verb != "USE" {
		t.Fatalf("%+v", d)
	}
	r = Classify(PostgreSQL, []byte("SELECT 1; SET ROLE postgres"))
	d, denied = r.Deny(core.AllScopes)
	if !denied || d.Refused != RefusedRole || d.Err.Kind != core.KindForbidden || d.Verb != "SET" ||
		d.Err.Message != "Statement not allowed through the HeliosDB gateway: it changes the database role the session runs as" {
		t.Fatalf("%+v", d)
	}
	r = Classify(MySQL, []byte("PREPARE s FROM 'DELETE FROM t'"))
	if d, _ := r.Deny(read); d.Verb != "DELETE" {
		t.Fatalf("%+v", d)
	}
}

// TestWalkerPasses: the default reading comes first and alone for ordinary
// text; another reading runs only when the text holds what it reads
// differently.
func TestWalkerPasses(t *testing.T) {
	passes := func(d Dialect, q string) (n int, texts []string) {
		w := NewWalker(d, []byte(q))
		seen := map[int]bool{}
		for {
			st, ok := w.Next()
			if !ok {
				return len(seen), texts
			}
			seen[st.Pass] = true
			if st.Pass == 0 {
				texts = append(texts, strings.TrimSpace(string(st.Text)))
			}
		}
	}
	if n, texts := passes(PostgreSQL, " SELECT 1 ; ; SELECT 'a;b' "); n != 1 || len(texts) != 2 || texts[1] != "SELECT 'a;b'" {
		t.Fatalf("%d passes %q", n, texts)
	}
	if n, _ := passes(PostgreSQL, `SELECT 'a\'; DELETE FROM t; --'`); n != 2 {
		t.Fatalf("backslash in a standard string: %d passes", n)
	}
	if n, _ := passes(MySQL, `SELECT 'a\'; DELETE FROM t; -- '`); n != 3 {
		t.Fatalf("backslash in a MySQL string: %d passes", n)
	}
	if n, _ := passes(MySQL, "SELECT 1 /*!50000 , 2 */"); n != 2 {
		t.Fatalf("versioned comment: %d passes", n)
	}
}

// TestRefusalErrors: every refusal has its preallocated FORBIDDEN error.
func TestRefusalErrors(t *testing.T) {
	if Refusal(0).Error() != nil {
		t.Fatal("no refusal has an error")
	}
	for r := Refusal(1); r < numRefusals; r++ {
		e := r.Error()
		if e == nil || e.Kind != core.KindForbidden || !strings.HasPrefix(e.Message, MsgNotAllowed) || e != r.Error() {
			t.Fatalf("%d: %+v", r, e)
		}
	}
}

// TestLexerTokens: what the front ends' built-in responders read.
func TestLexerTokens(t *testing.T) {
	l := NewLexer(PostgreSQL, []byte(`SELECT -1, "Quo""ted", E'\'', $a$x$a$, $1, pg_catalog.version() -- c`))
	var got []string
	for {
		tk := l.Next()
		if tk.Kind == KindEOF {
			break
		}
		got = append(got, string(tk.Inner()))
	}
	want := []string{"SELECT", "-", "1", ",", `Quo""ted`, ",", `\'`, ",", "x", ",", "$1", ",", "pg_catalog", ".", "version", "(", ")"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%q", got)
	}
	if tk := NewLexer(MySQL, []byte("`a`")); !bytes.Equal(tk.Next().Inner(), []byte("a")) {
		t.Fatal("backquoted identifier")
	}
}

// TestClassifyAllocs: ordinary statements are classified without
// allocating.
func TestClassifyAllocs(t *testing.T) {
	for _, c := range []struct {
		d Dialect
		q string
	}{
		{PostgreSQL, "SELECT 1"},
		{PostgreSQL, "SELECT abalance FROM pgbench_accounts WHERE aid = 42;"},
		{PostgreSQL, "SELECT * FROM helios_whoami()"},
		{PostgreSQL, "SELECT a, b FROM t WHERE c = 'x' AND d IN (SELECT e FROM u) ORDER BY 1 LIMIT 10"},
		{PostgreSQL, "INSERT INTO t (a, b) VALUES ($1, $2) RETURNING id"},
		{PostgreSQL, "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x; SET search_path = public"},
		{PostgreSQL, "SELECT set_config('search_path', 'x', false)"},
		{PostgreSQL, "SET ROLE postgres"},
		{PostgreSQL, "DO $$ BEGIN DELETE FROM t; END $$"},
		{MySQL, "SELECT 1"},
		{MySQL, "SET NAMES utf8mb4"},
		{MySQL, "SELECT `a` FROM `t` WHERE b = 'it''s' /*!50000 AND 1 */"},
		{MySQL, "PREPARE s FROM 'DELETE FROM t'"},
		{MySQL, "CREATE PROCEDURE p() BEGIN IF 1 THEN DELETE FROM t; END IF; END"},
	} {
		q := []byte(c.q)
		if n := testing.AllocsPerRun(100, func() { Classify(c.d, q) }); n != 0 {
			t.Errorf("%q: %v allocations", c.q, n)
		}
	}
}
