package sqlscope

import "github.com/heliosdb/auth/core"

// Refusal says why a statement is refused for every token, whatever its
// scopes. The zero value means it is not.
type Refusal uint8

// Refusals.
const (
	_ Refusal = iota
	// RefusedUnreadable: an unterminated quote or comment, a NUL byte, an
	// open /*! comment: the gateway cannot tell where the statement ends.
	RefusedUnreadable
	// RefusedUnknown: a statement (or object of CREATE/ALTER/DROP) the
	// gateway does not know.
	RefusedUnknown
	// RefusedRole: it changes the role the session runs as (SET ROLE, SET
	// SESSION AUTHORIZATION, RESET ROLE, DISCARD ALL, set_config('role', …),
	// MySQL SET ROLE / SET DEFAULT ROLE).
	RefusedRole
	// RefusedAccounts: it manages database users or roles (CREATE/ALTER/DROP
	// USER|ROLE|GROUP, RENAME USER, REASSIGN OWNED, SET PASSWORD).
	RefusedAccounts
	// RefusedServer: it changes the server rather than a database (ALTER
	// SYSTEM, SET GLOBAL/PERSIST, tablespaces, replication, plugins,
	// CHECKPOINT, FLUSH, SHUTDOWN …).
	RefusedServer
	// RefusedCode: it loads server-side code or runs a program (LOAD,
	// COPY … PROGRAM, CREATE FUNCTION … SONAME, DO in another language).
	RefusedCode
	// RefusedDynamic: its SQL is computed when it runs (PREPARE … FROM
	// @variable, EXECUTE of a computed string in a DO block, set_config with
	// a computed name), so the gateway cannot check it.
	RefusedDynamic
	// RefusedTooComplex: too large to check under every reading, or
	// statements nested too deeply.
	RefusedTooComplex
	numRefusals
)

var refusalReasons = [numRefusals]string{
	RefusedUnreadable: "the gateway cannot tell where it ends (an unterminated quoted string, identifier or comment, or a NUL byte)",
	RefusedUnknown:    "the gateway does not recognize this kind of statement",
	RefusedRole:       "it changes the database role the session runs as",
	RefusedAccounts:   "it manages database users or roles",
	RefusedServer:     "it changes the database server itself, not a database",
	RefusedCode:       "it loads server-side code or runs a program on the server",
	RefusedDynamic:    "its SQL is computed when it runs, so the gateway cannot check it",
	RefusedTooComplex: "it is too large or too deeply nested to check",
}

// MsgNotAllowed starts the message of every refusal.
const MsgNotAllowed = "Statement not allowed through the HeliosDB gateway: "

// refusalErrors holds one preallocated error per refusal, so refusing
// allocates nothing.
var refusalErrors = func() (t [numRefusals]*core.Error) {
	for r := Refusal(1); r < numRefusals; r++ {
		t[r] = &core.Error{Kind: core.KindForbidden, Message: MsgNotAllowed + refusalReasons[r]}
	}
	return t
}()

// Error returns the refusal as a FORBIDDEN token error ("Statement not
// allowed through the HeliosDB gateway: <reason>"), nil for 0.
func (r Refusal) Error() *core.Error {
	if r == 0 || r >= numRefusals {
		return nil
	}
	return refusalErrors[r]
}

// String returns the reason.
func (r Refusal) String() string {
	if r >= numRefusals {
		return "refusal(?)"
	}
	if r == 0 {
		return "allowed"
	}
	return refusalReasons[r]
}
