// Package sqlscope decides which token scopes a SQL text needs. It is the
// one classifier behind the PostgreSQL, MySQL and REST (/api/v1/sql,
// PostgreSQL dialect) front ends; each of them only maps its answer to a
// native error (SQLSTATE 42501, MySQL 1142 or 1044, HTTP 403 FORBIDDEN).
//
// # What it owns
//
// Lexing SQL the way the servers do (lexer.go): PostgreSQL's $tag$
// dollar quotes, E” strings with backslash escapes, ” strings with ”
// doubling, B”/X” strings that end at the first quote, "identifiers",
// nested /* */ comments and -- comments; MySQL's `identifiers`, ” and ""
// strings with backslash escapes, # comments, -- comments only when a space
// or control character follows, and /*! … */ and /*!50000 … */ comments,
// whose body is code. Splitting a text into statements at every ';' outside
// quotes and comments (walker.go): every statement of a multi-statement
// string is classified, and the text needs the union. A ';' inside
// parentheses splits too — it is a syntax error everywhere but in
// PostgreSQL rule actions, and classifying the pieces only adds scopes.
// Classifying each statement (statement.go, bag.go): its leading words
// decide its kind, and a scan of all its tokens finds what they do not
// show — a DELETE inside a WITH or a subquery, SELECT … INTO, SELECT … FOR
// SHARE, set_config('role', …), SET GLOBAL later in a list.
//
// What a statement needs:
//
//   - reads (SELECT, WITH … SELECT, VALUES, TABLE, SHOW, EXPLAIN without
//     ANALYZE, DESCRIBE, EXECUTE, FETCH): database:read;
//   - data changes (INSERT, UPDATE, DELETE, MERGE, REPLACE, UPSERT, COPY
//     FROM, LOAD DATA, TRUNCATE, REFRESH MATERIALIZED VIEW, CALL, DO, SELECT
//     … FOR UPDATE/SHARE, MySQL INTO OUTFILE/DUMPFILE, a data-modifying
//     statement anywhere in a WITH or subquery, EXPLAIN ANALYZE of any of
//     these): database:write, and database:read where they read;
//     PostgreSQL's SELECT … INTO creates a table: schema:write too;
//   - DDL (CREATE, ALTER, DROP, RENAME, COMMENT ON, GRANT, REVOKE of
//     tables, views, indexes, functions, schemas …): schema:write;
//     CREATE TABLE … AS fills the table: database:read and database:write
//     too; a MySQL routine, trigger or event also needs what its body's
//     statements need;
//   - CREATE DATABASE, DROP DATABASE (MySQL: SCHEMA too): database:create,
//     database:delete;
//   - MariaDB's EXECUTE IMMEDIATE 'stmt' and BEGIN NOT ATOMIC … END: what
//     their statements need;
//   - PREPARE x AS stmt and MySQL's PREPARE s FROM 'stmt': what stmt
//     needs (the string is decoded and classified); PREPARE s FROM
//     @variable is refused;
//   - transaction control and session settings (BEGIN, COMMIT, SAVEPOINT,
//     SET search_path, SET NAMES, SET x = y): nothing.
//
// Refused for every token, whatever its scopes (Refusal): statements that
// change the role the session runs as (SET ROLE, SET SESSION
// AUTHORIZATION, RESET ROLE, DISCARD ALL, set_config('role', …) anywhere,
// ALTER … SET role), manage users or roles, change the server (ALTER
// SYSTEM, SET GLOBAL/PERSIST/@@global, tablespaces, replication, FLUSH,
// SHUTDOWN, CHECKPOINT …), load code or run programs (LOAD, COPY …
// PROGRAM, CREATE FUNCTION … SONAME, DO in a language other than
// PL/pgSQL), whose SQL is computed at run time (or whose names are spelled
// with escapes, as U&"…" identifiers are), that the gateway does not
// recognize, or that it cannot read to their end.
//
// # Readings
//
// Session settings change how the same bytes split into tokens:
// PostgreSQL's standard_conforming_strings=off makes \ an escape in ”
// strings; MySQL's NO_BACKSLASH_ESCAPES and ANSI_QUOTES do the opposite
// and make "" an identifier; a MySQL server older than a /*!NNNNN comment
// (or MySQL reading MariaDB's /*M! comment) skips it; and in GBK, Big5 or
// Shift_JIS a \ or ` can be the second byte of a character. A statement
// hidden from one reading is visible in another, so when the default
// reading (Pass 0) meets one of these — a backslash in such a string, a
// versioned comment, a possible lead byte before \ or ` — the text is read
// again under each setting that could matter, and the result is the union.
// Another reading that meets text it cannot lex, or a statement the
// gateway does not know (value text outside its quotes, typically), is a
// syntax error there and runs nothing from that statement on; under the
// default reading either is refused. The union costs false refusals where
// the other reading shows words of a value as SQL — a read-only token's
// SELECT with two backslash-escaped quotes (go-sql-driver's
// interpolateParams, PHP's emulated prepares) around the word DELETE, or
// a value that is an injection attempt under NO_BACKSLASH_ESCAPES —
// until a proxy narrows the readings to the session's real settings
// (PostgreSQL reports standard_conforming_strings and client_encoding in
// ParameterStatus, MySQL NO_BACKSLASH_ESCAPES in its status flags).
//
// # What it must never do
//
// Fail open: anything unknown, unreadable, too large or too nested is
// refused, never let through. Allocate for ordinary statements: it lexes
// over the caller's bytes with fixed-size buffers (only decoding a PREPARE
// string or DO body that has escapes copies). Execute anything, or keep the
// bytes it was given after it returns (a Statement's Text points into
// them). It does not check test-database rules, cross-database names or
// what a function called by a SELECT does (a SELECT of a volatile function
// that writes, such as nextval, needs only database:read); the database
// server's own privileges remain the last line.
package sqlscope
