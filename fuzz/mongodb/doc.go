// Package mongodb holds the fuzz targets for the MongoDB front end's
// decoders: the wire message reader (with the session state machine behind
// it), the same after a successful PLAIN login (classifier, scope errors,
// built-in responder), and the BSON validator. The seed corpora in testdata/fuzz are real
// client captures (mongosh 2.12 and mongo-go-driver v2) with tokens
// redacted.
//
// This package is for tests only: nothing may import it, and it must never
// hold a real token in its corpus.
package mongodb
