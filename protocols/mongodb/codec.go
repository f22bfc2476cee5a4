package mongodb

import (
	"encoding/binary"
	"hash/crc32"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Wire protocol opcodes (MongoDB wire protocol specification).
const (
	OpReply       int32 = 1
	OpUpdate      int32 = 2001
	OpInsert      int32 = 2002
	OpQuery       int32 = 2004
	OpGetMore     int32 = 2005
	OpDelete      int32 = 2006
	OpKillCursors int32 = 2007
	OpCompressed  int32 = 2012
	OpMsg         int32 = 2013
)

// HeaderLen is the size of MsgHeader: messageLength, requestID, responseTo,
// opCode, each an int32 little-endian.
const HeaderLen = 16

// MaxMessageSize is maxMessageSizeBytes as the server advertises it: no
// message may be larger, whatever the configuration says.
const MaxMessageSize = 48000000

// MaxBSONObjectSize is maxBsonObjectSize as the server advertises it.
const MaxBSONObjectSize = 16 * 1024 * 1024

// OP_MSG flag bits.
const (
	FlagChecksumPresent uint32 = 1 << 0
	FlagMoreToCome      uint32 = 1 << 1
	FlagExhaustAllowed  uint32 = 1 << 16
	// flagRequiredMask: bits 0-15 are "required" — a receiver must reject
	// a message with a required bit it does not know.
	flagRequiredMask = 0xffff
	flagKnown        = FlagChecksumPresent | FlagMoreToCome
)

// OP_MSG section kinds.
const (
	sectionBody             byte = 0 // one document: the command
	sectionDocumentSequence byte = 1 // size, identifier, documents
)

// checksumLen is the CRC-32C after an OP_MSG's sections when
// FlagChecksumPresent is set.
const checksumLen = 4

// minDocumentLen is the shortest BSON document: its int32 length and the
// terminating NUL ({}).
const minDocumentLen = 5

// OP_REPLY responseFlags.
const (
	replyQueryFailure int32 = 1 << 1
	replyAwaitCapable int32 = 1 << 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is a message's MsgHeader.
type Header struct {
	MessageLength int32
	RequestID     int32
	ResponseTo    int32
	OpCode        int32
}

// ReadHeader decodes the MsgHeader at the front of b; ok is false when b
// holds fewer than HeaderLen bytes.
func ReadHeader(b []byte) (h Header, ok bool) {
	if len(b) < HeaderLen {
		return h, false
	}
	h.MessageLength = int32(binary.LittleEndian.Uint32(b))
	h.RequestID = int32(binary.LittleEndian.Uint32(b[4:]))
	h.ResponseTo = int32(binary.LittleEndian.Uint32(b[8:]))
	h.OpCode = int32(binary.LittleEndian.Uint32(b[12:]))
	return h, true
}

// Message is one decoded request. Every slice is a view into the buffer
// given to ReadMessage and is valid only as long as that buffer is.
type Message struct {
	Header Header
	// Command is the command document: the OP_MSG kind-0 body, or the
	// OP_QUERY query with a $query wrapper removed. Validated BSON.
	Command bsoncore.Document
	// DB is the database the command runs on: $db of an OP_MSG, or the
	// part of an OP_QUERY namespace before ".$cmd".
	DB []byte
	// Legacy is true for OP_QUERY: the reply must be an OP_REPLY.
	Legacy bool
	// MoreToCome is the OP_MSG moreToCome flag: the client expects no reply.
	MoreToCome bool
	// Sequences counts the kind-1 document sequences (each validated).
	Sequences int
}

// ReadMessage decodes the first message of b. It returns n == 0 and a nil
// error when b does not hold a whole message yet. A message whose declared
// length exceeds limit is an error as soon as its header has arrived, before
// its body is buffered. Every length inside the message is checked against
// the bytes that hold it; ReadMessage never reads outside b and never panics.
//
// On error, n is the message's length when the framing is intact (so the
// caller could skip it) and the Header is filled when it was read.
func ReadMessage(b []byte, limit int) (m Message, n int, err error) {
	h, ok := ReadHeader(b)
	if !ok {
		return m, 0, nil
	}
	m.Header = h
	if h.MessageLength < HeaderLen {
		return m, 0, errShortMessage
	}
	if int64(h.MessageLength) > int64(limit) {
		return m, 0, &WireError{Code: CodeBSONObjectTooLarge, Msg: tooLargeMsg(int(h.MessageLength), limit)}
	}
	L := int(h.MessageLength)
	if len(b) < L {
		return m, 0, nil
	}
	msg := b[:L]
	switch h.OpCode {
	case OpMsg:
		err = decodeMsg(&m, msg)
	case OpQuery:
		err = decodeQuery(&m, msg[HeaderLen:])
	case OpCompressed:
		err = errCompressed
	default:
		err = errOpcode
	}
	return m, L, err
}

// decodeMsg decodes an OP_MSG (whole message, header included).
func decodeMsg(m *Message, msg []byte) error {
	body := msg[HeaderLen:]
	if len(body) < 4 {
		return errTruncated
	}
	flags := binary.LittleEndian.Uint32(body)
	if flags&flagRequiredMask&^flagKnown != 0 {
		return errFlags
	}
	body = body[4:]
	if flags&FlagChecksumPresent != 0 {
		if len(body) < checksumLen {
			return errTruncated
		}
		end := len(msg) - checksumLen
		want := binary.LittleEndian.Uint32(msg[end:])
		if crc32.Checksum(msg[:end], castagnoli) != want {
			return errChecksum
		}
		body = body[:len(body)-checksumLen]
	}
	m.MoreToCome = flags&FlagMoreToCome != 0
	haveBody := false
	for len(body) > 0 {
		kind := body[0]
		body = body[1:]
		switch kind {
		case sectionBody:
			doc, rest, err := readDocument(body)
			if err != nil {
				return err
			}
			if haveBody {
				return errTwoBodies
			}
			haveBody = true
			m.Command, body = doc, rest
		case sectionDocumentSequence:
			if len(body) < 4 {
				return errTruncated
			}
			size := int64(int32(binary.LittleEndian.Uint32(body)))
			if size < minDocumentLen || size > int64(len(body)) {
				return errSequence
			}
			seq := body[4:size]
			body = body[size:]
			_, docs, ok := readCString(seq)
			if !ok {
				return errSequence
			}
			for len(docs) > 0 {
				var err error
				if _, docs, err = readDocument(docs); err != nil {
					return err
				}
			}
			m.Sequences++
		default:
			return errSectionKind
		}
	}
	if !haveBody {
		return errNoBody
	}
	v, err := m.Command.LookupErr("$db")
	if err != nil || v.Type != bsoncore.TypeString {
		return errNoDB
	}
	m.DB = stringBytes(v)
	return nil
}

// decodeQuery decodes an OP_QUERY body (after the header). Only commands
// (a namespace ending in ".$cmd") are accepted.
func decodeQuery(m *Message, body []byte) error {
	m.Legacy = true
	if len(body) < 4 {
		return errTruncated
	}
	ns, rest, ok := readCString(body[4:])
	if !ok || len(rest) < 8 {
		return errTruncated
	}
	rest = rest[8:] // numberToSkip, numberToReturn
	doc, rest, err := readDocument(rest)
	if err != nil {
		return err
	}
	if len(rest) > 0 { // returnFieldsSelector
		if _, rest, err = readDocument(rest); err != nil {
			return err
		}
		if len(rest) > 0 {
			return errTrailing
		}
	}
	const suffix = ".$cmd"
	if len(ns) <= len(suffix) || string(ns[len(ns)-len(suffix):]) != suffix {
		return errLegacyQuery
	}
	m.DB = ns[:len(ns)-len(suffix)]
	if first, err := doc.IndexErr(0); err == nil && string(first.KeyBytes()) == "$query" {
		if q, ok := first.Value().DocumentOK(); ok {
			doc = q
		}
	}
	m.Command = doc
	return nil
}

// readDocument reads one BSON document from the front of b, validating it
// completely (see validateDocument), and returns it and the bytes after it.
func readDocument(b []byte) (bsoncore.Document, []byte, error) {
	if len(b) < 4 {
		return nil, nil, errTruncated
	}
	l := int64(int32(binary.LittleEndian.Uint32(b)))
	if l < minDocumentLen || l > int64(len(b)) {
		return nil, nil, errBSONLength
	}
	doc := b[:l]
	if err := ValidateDocument(doc); err != nil {
		return nil, nil, err
	}
	return doc, b[l:], nil
}

// readCString reads a NUL-terminated string from the front of b.
func readCString(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, nil, false
}

// stringBytes returns a validated BSON string value's bytes without the NUL,
// without copying.
func stringBytes(v bsoncore.Value) []byte {
	if len(v.Data) < 5 {
		return nil
	}
	return v.Data[4 : len(v.Data)-1]
}

// beginReply appends a reply header to dst in the form the request used
// (OP_MSG, or OP_REPLY for a legacy OP_QUERY) and returns the offset of the
// message start for endReply. The caller then appends one BSON document.
func beginReply(dst []byte, legacy bool, requestID, responseTo int32) (int, []byte) {
	start := len(dst)
	op := OpMsg
	if legacy {
		op = OpReply
	}
	dst = binary.LittleEndian.AppendUint32(dst, 0) // length, patched by endReply
	dst = binary.LittleEndian.AppendUint32(dst, uint32(requestID))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(responseTo))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(op))
	if legacy {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(replyAwaitCapable))
		dst = binary.LittleEndian.AppendUint64(dst, 0) // cursorID
		dst = binary.LittleEndian.AppendUint32(dst, 0) // startingFrom
		dst = binary.LittleEndian.AppendUint32(dst, 1) // numberReturned
	} else {
		dst = binary.LittleEndian.AppendUint32(dst, 0) // flagBits
		dst = append(dst, sectionBody)
	}
	return start, dst
}

// endReply patches the message length of the reply begun at start.
func endReply(dst []byte, start int) []byte {
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// isCompressedQuery reports whether b starts an OP_COMPRESSED message that
// wraps an OP_QUERY (so the refusal goes back as an OP_REPLY): the first
// field after its header is the wrapped message's originalOpcode.
func isCompressedQuery(b []byte) bool {
	h, ok := ReadHeader(b)
	return ok && h.OpCode == OpCompressed && len(b) >= HeaderLen+4 &&
		int32(binary.LittleEndian.Uint32(b[HeaderLen:])) == OpQuery
}
