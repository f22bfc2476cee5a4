// Package sqlscope fuzzes the SQL scope check as the front ends apply it.
// The classifier itself (protocols/internal/sqlscope) is internal to the
// protocols tree, so its own fuzz target, FuzzClassify, lives beside it:
// arbitrary text in both dialects never panics, and a statement rewritten
// with upper-case keywords, comments between its tokens and leading
// whitespace and semicolons needs the same scopes. This package drives the
// three SQL front ends with a database:read token: POST /api/v1/sql (the
// REST handler), a PostgreSQL session's simple Query and a MySQL session's
// COM_QUERY. Their answers must be well formed, the two PostgreSQL-dialect
// front ends must refuse exactly the same texts with the same message, and
// whitespace and semicolons before a text must not change any front end's
// verdict. Its seed corpus is added with f.Add (the statements of the
// task that got past the old per-protocol classifiers, among others).
//
// This package is for tests only: nothing may import it.
package sqlscope
