package mongodb

import (
	"strconv"
	"strings"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/connstr"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// MongoDB server error codes used by the gateway (src/mongo/base/error_codes.yml).
const (
	CodeBadValue                  int32 = 2
	CodeHostUnreachable           int32 = 6
	CodeFailedToParse             int32 = 9
	CodeUnauthorized              int32 = 13
	CodeProtocolError             int32 = 17
	CodeAuthenticationFailed      int32 = 18
	CodeInvalidBSON               int32 = 22
	CodeCommandNotFound           int32 = 59
	CodeCommandNotSupported       int32 = 115
	CodeUnsupportedOpQueryCommand int32 = 352
	CodeResourceExhausted         int32 = 402
	CodeBSONObjectTooLarge        int32 = 10334
	CodeNoDollarDB                int32 = 40571
)

// codeName returns the codeName field drivers show next to a code.
func codeName(code int32) string {
	switch code {
	case CodeBadValue:
		return "BadValue"
	case CodeHostUnreachable:
		return "HostUnreachable"
	case CodeFailedToParse:
		return "FailedToParse"
	case CodeUnauthorized:
		return "Unauthorized"
	case CodeProtocolError:
		return "ProtocolError"
	case CodeAuthenticationFailed:
		return "AuthenticationFailed"
	case CodeInvalidBSON:
		return "InvalidBSON"
	case CodeCommandNotFound:
		return "CommandNotFound"
	case CodeCommandNotSupported:
		return "CommandNotSupported"
	case CodeUnsupportedOpQueryCommand:
		return "UnsupportedOpQueryCommand"
	case CodeResourceExhausted:
		return "ResourceExhausted"
	case CodeBSONObjectTooLarge:
		return "BSONObjectTooLarge"
	}
	return "Location" + strconv.Itoa(int(code))
}

// WireError is an error the gateway reports to the client as a command
// reply {ok: 0, errmsg, code, codeName}.
type WireError struct {
	Code int32
	Msg  string
}

// Error returns the code name and the message.
func (e *WireError) Error() string { return codeName(e.Code) + ": " + e.Msg }

// Decoding errors. Each closes the connection after its reply.
var (
	errShortMessage = &WireError{CodeProtocolError, "message length is shorter than the 16-byte message header"}
	errTruncated    = &WireError{CodeProtocolError, "message is truncated: a field runs past the message length"}
	errTrailing     = &WireError{CodeProtocolError, "message has bytes after its last document"}
	errFlags        = &WireError{CodeProtocolError, "OP_MSG has a required flag bit this server does not know"}
	errChecksum     = &WireError{CodeProtocolError, "OP_MSG checksum (CRC-32C) does not match the message"}
	errSequence     = &WireError{CodeProtocolError, "OP_MSG document sequence section has a bad size or identifier"}
	errSectionKind  = &WireError{CodeProtocolError, "OP_MSG section kind must be 0 or 1"}
	errTwoBodies    = &WireError{CodeProtocolError, "OP_MSG has more than one body (kind 0) section"}
	errNoBody       = &WireError{CodeProtocolError, "OP_MSG has no body (kind 0) section"}
	errNoDB         = &WireError{CodeNoDollarDB, "OP_MSG requests require a $db argument"}
	errCompressed   = &WireError{CodeProtocolError, "OP_COMPRESSED is not supported: this server advertises no compressors; remove compressors= from the connection string"}
	errOpcode       = &WireError{CodeProtocolError, "unsupported wire protocol opcode: use OP_MSG (MongoDB 3.6+ drivers)"}
	errLegacyQuery  = &WireError{CodeUnsupportedOpQueryCommand, "OP_QUERY is supported for commands on <db>.$cmd only; the client driver may require an upgrade"}
	errBSON         = &WireError{CodeInvalidBSON, "invalid BSON document"}
	errBSONLength   = &WireError{CodeInvalidBSON, "invalid BSON: a length does not match the bytes that hold it"}
	errBSONType     = &WireError{CodeInvalidBSON, "invalid BSON: unknown element type"}
	errBSONDepth    = &WireError{CodeInvalidBSON, "invalid BSON: documents nested too deeply"}
)

// workingURI is the connection string that authenticates on this
// connection's address (connstr.MongoURI): SASL PLAIN with the token as the
// password, plus TLS and the CA file to trust unless the client may send
// its token in cleartext and is doing so. db is the database of the refused
// command; admin and $external hold no data, so the default database stands
// in for them.
func (s *Session) workingURI(db []byte) string {
	host := "host:27017"
	if s.info.Local.IsValid() {
		host = s.info.Local.String()
	}
	name := printable(db)
	if name == "" || name == "admin" || name == "$external" {
		name = connstr.Database
	}
	return connstr.MongoURI(host, name, s.p.caFile, s.info.TLS || !s.info.PlaintextOK)
}

func tooLargeMsg(n, limit int) string {
	return "message of " + strconv.Itoa(n) + " bytes exceeds the limit of " + strconv.Itoa(limit) + " bytes"
}

// Authentication errors in the user's terms.
const (
	// msgUsePlain teaches the one thing the seed's MongoDB snippet lacks;
	// workingURI follows it with the connection string that works.
	msgUsePlain = "HeliosDB authenticates MongoDB clients with a HeliosDB token sent as the password over SASL PLAIN, " +
		"so SCRAM cannot work (the server holds no password verifier). Connect with authMechanism=PLAIN: "
	msgTLSRequired  = "TLS is required to authenticate from this address: the token would travel in cleartext. Connect with TLS: "
	msgPlainPayload = "SASL PLAIN payload must be \"\\0<user>\\0<token>\" (authzid may be empty): set the password to your HeliosDB token"
	msgNoSASL       = "no SASL conversation is in progress: PLAIN completes in one saslStart"
	msgNoUpstream   = "no upstream database is configured: this HeliosDB gateway runs its built-in responder, " +
		"which answers ping, hello, buildInfo and connectionStatus only; configure an upstream MongoDB or FerretDB to run data commands"
)

// msgUpstreamLost answers, in proxy mode, a request in flight when the
// upstream server closed its connection: HostUnreachable, which drivers
// retry once on another connection (where the gateway takes a new server
// connection).
const msgUpstreamLost = "the upstream MongoDB server closed the connection while this command ran; the gateway opens a new one for the next command"

// refusedMessage words the refusal of a command that administers the
// server (ClassRefused).
func refusedMessage(db []byte, cmd bsoncore.Document) string {
	msg := "not authorized on " + printable(db) + " to execute command " + describeCommand(cmd, db) +
		": HeliosDB tokens may not run this command: it administers the database server itself " +
		"(users and roles, replication, sharding, server parameters, shutdown), which no token scope grants"
	return strings.ToValidUTF8(msg, "\uFFFD")
}

// errOtherToken refuses a saslStart with a second token on a connection
// that is bound to the token it first authenticated with.
var errOtherToken = &core.Error{Kind: core.KindForbidden, Message: "This connection is already authenticated with another token",
	Detail: "a MongoDB connection stays bound to its first token: open a new client to use a different one"}

// sessionEndedMessage words the code 18 reply that ends a session whose
// token stopped being valid.
func sessionEndedMessage(err error) string {
	return tokenMessage(err) + "; the server closed this connection: reconnect with a valid token"
}

// testOnlyMessage words a test token's refusal on a database that is not a
// test database, as mongod words a missing privilege: "not authorized on
// prod to execute command { find: "c", $db: "prod" }: Test tokens can only
// access test databases (…)".
func testOnlyMessage(db []byte, cmd bsoncore.Document) string {
	msg := "not authorized on " + printable(db) + " to execute command " + describeCommand(cmd, db) + ": " +
		core.ErrTestDatabaseOnly.Message + " (database " + strconv.Quote(printable(db)) + " is not registered as a test database; " +
		"hdb_test_ tokens may use only databases created with \"test\": true)"
	return strings.ToValidUTF8(msg, "\uFFFD")
}

// tokenMessage words a token error for error 18: the guide's message and
// what exactly was wrong (never the token itself).
func tokenMessage(err error) string {
	if te, ok := err.(*core.Error); ok {
		return te.Error()
	}
	return core.MsgInvalid
}

// appendErrorDoc appends {ok: 0, errmsg, code, codeName} to dst.
func appendErrorDoc(dst []byte, code int32, msg string) []byte {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendDoubleElement(dst, "ok", 0)
	dst = bsoncore.AppendStringElement(dst, "errmsg", msg)
	dst = bsoncore.AppendInt32Element(dst, "code", code)
	dst = bsoncore.AppendStringElement(dst, "codeName", codeName(code))
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

// forbiddenMessage words a missing scope as mongod words a missing
// privilege: "not authorized on main to execute command { find: "c", $db:
// "main" }: Token does not have required scope: database:read".
func forbiddenMessage(db []byte, cmd bsoncore.Document, s core.Scope) string {
	msg := "not authorized on " + printable(db) + " to execute command " + describeCommand(cmd, db) + ": " + core.ForbiddenError(s).Message
	return strings.ToValidUTF8(msg, "\uFFFD")
}

// describeCommand renders "{ <name>: <value>, $db: "<db>" }" with the
// value shortened; other fields are left out (they may be large).
func describeCommand(cmd bsoncore.Document, db []byte) string {
	el, err := cmd.IndexErr(0)
	if err != nil {
		return "{}"
	}
	val, truncated := el.Value().StringN(64)
	if truncated {
		val += "…"
	}
	return "{ " + printable(el.KeyBytes()) + ": " + val + ", $db: " + strconv.Quote(string(db)) + " }"
}

// printable returns a client-chosen name for an error message: at most 64
// bytes and valid UTF-8 (a BSON string must be; some drivers reject one
// that is not).
func printable(name []byte) string {
	if len(name) > 64 {
		name = name[:64]
	}
	return strings.ToValidUTF8(string(name), "\uFFFD")
}

// errWrongUser is the error observed for a SASL PLAIN user other than
// default.
var errWrongUser = &core.Error{Kind: core.KindInvalid, Message: core.MsgInvalid,
	Detail: "HeliosDB tokens authenticate the user default"}

// wrongUserMessage words error 18 for a SASL PLAIN user other than default.
func wrongUserMessage(user []byte) string {
	if len(user) > 64 {
		user = user[:64]
	}
	msg := "Authentication failed: unknown user " + strconv.Quote(printable(user)) +
		". HeliosDB tokens authenticate the user default: connect as default with the token as the password, e.g. " +
		"mongodb://default:$HELIOS_TOKEN@host:27017/main?authMechanism=PLAIN&tls=true"
	return strings.ToValidUTF8(msg, "\uFFFD")
}

// unknownDBMessage words error 13 for a command on a database that is not
// registered.
func unknownDBMessage(db []byte, cmd bsoncore.Document) string {
	msg := "not authorized on " + printable(db) + " to execute command " + describeCommand(cmd, db) +
		": database " + strconv.Quote(printable(db)) + " does not exist (it is not a registered HeliosDB database; " +
		"GET /v1/databases lists them)"
	return strings.ToValidUTF8(msg, "\uFFFD")
}
