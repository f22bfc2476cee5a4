package mongodb

import (
	"encoding/binary"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// maxDepth bounds document nesting (the server's own limit is 100 levels,
// plus a little for the command envelope).
const maxDepth = 128

// ValidateDocument checks that doc is exactly one well-formed BSON document:
// its length equals len(doc), every element's type is known, every length
// inside it (strings, binaries, nested documents and arrays, code with
// scope) fits in its container and is self-consistent, and nesting is
// bounded. bsoncore's own Validate is shallow for nested documents; after
// ValidateDocument, every bsoncore read on doc and its sub-documents stays
// in bounds.
func ValidateDocument(doc []byte) error {
	return validateDocument(doc, 0)
}

func validateDocument(doc []byte, depth int) error {
	if depth > maxDepth {
		return errBSONDepth
	}
	if len(doc) < minDocumentLen {
		return errBSONLength
	}
	if int64(int32(binary.LittleEndian.Uint32(doc))) != int64(len(doc)) {
		return errBSONLength
	}
	if doc[len(doc)-1] != 0 {
		return errBSON
	}
	elems := doc[4 : len(doc)-1]
	for len(elems) > 0 {
		t := bsoncore.Type(elems[0])
		_, rest, ok := readCString(elems[1:])
		if !ok {
			return errBSON
		}
		n, err := valueLen(t, rest, depth)
		if err != nil {
			return err
		}
		elems = rest[n:]
	}
	return nil
}

// valueLen returns the length of the value of type t at the front of b,
// validating it.
func valueLen(t bsoncore.Type, b []byte, depth int) (int, error) {
	fixed := func(n int) (int, error) {
		if len(b) < n {
			return 0, errBSON
		}
		return n, nil
	}
	switch t {
	case bsoncore.TypeDouble, bsoncore.TypeDateTime, bsoncore.TypeTimestamp, bsoncore.TypeInt64:
		return fixed(8)
	case bsoncore.TypeInt32:
		return fixed(4)
	case bsoncore.TypeDecimal128:
		return fixed(16)
	case bsoncore.TypeObjectID:
		return fixed(12)
	case bsoncore.TypeBoolean:
		if len(b) < 1 || b[0] > 1 {
			return 0, errBSON
		}
		return 1, nil
	case bsoncore.TypeUndefined, bsoncore.TypeNull, bsoncore.TypeMinKey, bsoncore.TypeMaxKey:
		return 0, nil
	case bsoncore.TypeString, bsoncore.TypeJavaScript, bsoncore.TypeSymbol:
		return stringLen(b)
	case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray:
		if len(b) < 4 {
			return 0, errBSONLength
		}
		l := int64(int32(binary.LittleEndian.Uint32(b)))
		if l < minDocumentLen || l > int64(len(b)) {
			return 0, errBSONLength
		}
		if err := validateDocument(b[:l], depth+1); err != nil {
			return 0, err
		}
		return int(l), nil
	case bsoncore.TypeBinary:
		if len(b) < 5 {
			return 0, errBSON
		}
		l := int64(int32(binary.LittleEndian.Uint32(b)))
		if l < 0 || l+5 > int64(len(b)) {
			return 0, errBSONLength
		}
		if b[4] == 0x02 { // old binary: an inner length that must agree
			if l < 4 || int64(int32(binary.LittleEndian.Uint32(b[5:]))) != l-4 {
				return 0, errBSONLength
			}
		}
		return int(l) + 5, nil
	case bsoncore.TypeRegex: // pattern and options, two C strings
		_, rest, ok := readCString(b)
		if ok {
			_, rest, ok = readCString(rest)
		}
		if !ok {
			return 0, errBSON
		}
		return len(b) - len(rest), nil
	case bsoncore.TypeDBPointer:
		n, err := stringLen(b)
		if err != nil {
			return 0, err
		}
		if len(b)-n < 12 {
			return 0, errBSON
		}
		return n + 12, nil
	case bsoncore.TypeCodeWithScope:
		if len(b) < 4 {
			return 0, errBSON
		}
		total := int64(int32(binary.LittleEndian.Uint32(b)))
		if total < 4+5+5 || total > int64(len(b)) {
			return 0, errBSONLength
		}
		inner := b[4:total]
		n, err := stringLen(inner)
		if err != nil {
			return 0, err
		}
		if err := validateDocument(inner[n:], depth+1); err != nil {
			return 0, err
		}
		return int(total), nil
	}
	return 0, errBSONType
}

// stringLen validates a BSON string (int32 length including the NUL, bytes,
// NUL) at the front of b and returns its encoded length.
func stringLen(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, errBSON
	}
	l := int64(int32(binary.LittleEndian.Uint32(b)))
	if l < 1 || l > int64(len(b)-4) {
		return 0, errBSONLength
	}
	if b[4+l-1] != 0 {
		return 0, errBSON
	}
	return int(l) + 4, nil
}
