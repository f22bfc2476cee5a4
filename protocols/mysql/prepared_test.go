package mysql

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// TestPreparedBuiltins: COM_STMT_PREPARE of a built-in gets PREPARE_OK with
// its columns and no parameters, COM_STMT_EXECUTE a binary result set with
// the value computed then (SELECT 1 as an 8-byte integer, DATABASE() NULL
// until USE), COM_STMT_RESET OK, COM_STMT_CLOSE nothing, after which the id
// is unknown; SELECT ? echoes its parameter; other text still needs an
// upstream (1235).
func TestPreparedBuiltins(t *testing.T) {
	f, _, _, _ := policyFixture(t)
	tok, _ := f.mintFlags(t, core.TypeLive, 0)
	pk, _, c := login(t, f, from("192.0.2.7:40000"), "", tok)
	if !isOK(pk) {
		t.Fatalf("login: %q", pk)
	}
	deprecateEOF := c.s.caps&ClientDeprecateEOF != 0
	prepare := func(q string) (uint32, [][]byte) {
		t.Helper()
		pk, act := c.send(pkt(0, append([]byte{comStmtPrepare}, q...)))
		if act != netio.Continue || len(pk) == 0 {
			t.Fatalf("prepare %q: %q %v", q, pk, act)
		}
		if pk[0][0] != 0 {
			return 0, pk
		}
		return binary.LittleEndian.Uint32(pk[0][1:]), pk
	}
	execute := func(id uint32) [][]byte {
		t.Helper()
		p := binary.LittleEndian.AppendUint32([]byte{comStmtExecute}, id)
		pk, act := c.send(pkt(0, append(p, 0, 1, 0, 0, 0)))
		if act != netio.Continue {
			t.Fatalf("execute %d: %q", id, pk)
		}
		return pk
	}
	eof := 1
	if deprecateEOF {
		eof = 0
	}
	id, pk := prepare("SELECT 1")
	if id == 0 || len(pk) != 2+eof || binary.LittleEndian.Uint16(pk[0][5:]) != 1 || binary.LittleEndian.Uint16(pk[0][7:]) != 0 {
		t.Fatalf("prepare SELECT 1: %q", pk)
	}
	pk = execute(id)
	// column count, definition, [EOF], row, end
	if len(pk) != 4+eof || pk[0][0] != 1 || !strings.Contains(string(pk[1]), "\x011") {
		t.Fatalf("execute SELECT 1: %q", pk)
	}
	if row := pk[2+eof]; string(row) != "\x00\x00"+"\x01\x00\x00\x00\x00\x00\x00\x00" {
		t.Fatalf("SELECT 1 row %q", row)
	}
	db, _ := prepare("select database()")
	if row := execute(db)[2+eof]; string(row) != "\x00\x04" {
		t.Fatalf("DATABASE() before USE: %q", row)
	}
	if code, msg := query(t, c, "USE main"); code != 0 {
		t.Fatalf("USE main: %d %s", code, msg)
	}
	if row := execute(db)[2+eof]; string(row) != "\x00\x00\x04main" {
		t.Fatalf("DATABASE() after USE: %q", row)
	}
	if code, _ := query(t, c, string(binary.LittleEndian.AppendUint32([]byte{comStmtReset}, id))); code != 0 {
		t.Fatalf("COM_STMT_RESET: %d", code)
	}
	if pk, _ := c.send(pkt(0, binary.LittleEndian.AppendUint32([]byte{comStmtClose}, id))); len(pk) != 0 {
		t.Fatalf("COM_STMT_CLOSE answered %q", pk)
	}
	if code, _ := errCode(execute(id)[0]); code != erUnknownStmtHandler {
		t.Fatalf("execute after close: %d", code)
	}
	// SELECT ?: one parameter, answered with its type and bytes; the type
	// is kept for executions that do not send it again.
	pid, pk := prepare("SELECT ?")
	if pid == 0 || binary.LittleEndian.Uint16(pk[0][5:]) != 1 || binary.LittleEndian.Uint16(pk[0][7:]) != 1 || len(pk) != 3+2*eof {
		t.Fatalf("prepare SELECT ?: %q", pk)
	}
	exec := func(tail string) [][]byte {
		t.Helper()
		p := binary.LittleEndian.AppendUint32([]byte{comStmtExecute}, pid)
		pk, _ := c.send(pkt(0, append(append(p, 0, 1, 0, 0, 0), tail...)))
		return pk
	}
	for _, x := range []struct{ tail, typ, row string }{
		{"\x00\x01\x08\x00\x07\x00\x00\x00\x00\x00\x00\x00", "\x08", "\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00"},
		{"\x00\x01\xfd\x00\x05hello", "\xfd", "\x00\x00\x05hello"},
		{"\x00\x00\x02hi", "\xfd", "\x00\x00\x02hi"}, // the type as last bound
		{"\x01\x00", "\xfd", "\x00\x04"},             // NULL
	} {
		pk := exec(x.tail)
		if len(pk) != 4+eof || !strings.Contains(string(pk[1]), x.typ) || string(pk[2+eof]) != x.row {
			t.Fatalf("execute SELECT ? with %q: %q", x.tail, pk)
		}
	}
	if code, _ := errCode(exec("\x00\x01\xfd\x00\x09hi")[0]); code != erMalformedPacket {
		t.Fatal("a value longer than the packet was accepted")
	}
	for _, q := range []string{"SELECT ?, ?", "SELECT * FROM t"} {
		if _, pk := prepare(q); len(pk) != 1 {
			t.Fatalf("prepare %q: %q", q, pk)
		} else if code, _ := errCode(pk[0]); code != erNotSupportedYet {
			t.Fatalf("prepare %q: %d", q, code)
		}
	}
}
