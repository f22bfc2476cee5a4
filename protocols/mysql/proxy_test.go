package mysql

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// Server packets (payloads) for the framing tests, as MariaDB and MySQL
// send them.
func okPkt(status uint16) []byte {
	return binary.LittleEndian.AppendUint16([]byte{headerOK, 0, 0}, status)
}

func eofPkt(status uint16, deprecateEOF bool) []byte {
	if deprecateEOF {
		return binary.LittleEndian.AppendUint16([]byte{headerEOF, 0, 0}, status)
	}
	return binary.LittleEndian.AppendUint16([]byte{headerEOF, 0, 0}, status)[:5]
}

func errPkt() []byte { return AppendERR(nil, 1, 1064, "42000", "syntax")[packetHeaderLen:] }

func colPkt() []byte {
	return appendColumnDefinition(nil, 0, Column{"a", columnTypeVarString})[packetHeaderLen:]
}

func prepOK(cols, params uint16) []byte {
	p := []byte{headerOK, 1, 0, 0, 0}
	p = binary.LittleEndian.AppendUint16(p, cols)
	p = binary.LittleEndian.AppendUint16(p, params)
	return append(p, 0, 0, 0)
}

// TestResponseFraming: the pump's parser ends each kind of response at its
// last packet, and not before, with and without CLIENT_DEPRECATE_EOF,
// keeping the last status flags.
func TestResponseFraming(t *testing.T) {
	const inTrans, more, cursor = serverStatusInTrans, serverMoreResultsExist, serverStatusCursorExists
	row := []byte{1, 'x'}
	binRow := []byte{0, 0, 1, 'x'}
	cases := []struct {
		name   string
		kind   expect
		dep    bool
		pkts   [][]byte
		status uint16
		infile int // index of the LOCAL INFILE request, -1 if none
	}{
		{"OK", expResult, false, [][]byte{okPkt(inTrans)}, inTrans, -1},
		{"ERR", expResult, false, [][]byte{errPkt()}, 0, -1},
		{"result set", expResult, false, [][]byte{{2}, colPkt(), colPkt(), eofPkt(0, false), row, row, eofPkt(inTrans, false)}, inTrans, -1},
		{"result set, deprecate EOF", expResult, true, [][]byte{{1}, colPkt(), row, row, eofPkt(inTrans, true)}, inTrans, -1},
		{"empty result set, deprecate EOF", expResult, true, [][]byte{{1}, colPkt(), eofPkt(0, true)}, 0, -1},
		{"ERR in the rows", expResult, false, [][]byte{{1}, colPkt(), eofPkt(0, false), row, errPkt()}, 0, -1},
		{"multi-results", expResult, false, [][]byte{okPkt(more), {1}, colPkt(), eofPkt(0, false), row, eofPkt(more, false), okPkt(2)}, 2, -1},
		{"multi-results, deprecate EOF", expResult, true, [][]byte{{1}, colPkt(), row, eofPkt(more, true), okPkt(more | inTrans), {1}, colPkt(), eofPkt(2, true)}, 2, -1},
		{"cursor", expResult, false, [][]byte{{1}, colPkt(), eofPkt(cursor, false)}, cursor, -1},
		{"cursor, deprecate EOF", expResult, true, [][]byte{{1}, colPkt(), eofPkt(cursor, true)}, cursor, -1},
		{"binary rows", expResult, true, [][]byte{{1}, colPkt(), binRow, binRow, eofPkt(0, true)}, 0, -1},
		{"LOCAL INFILE", expResult, false, [][]byte{{localInfileRequest, 'f'}, okPkt(0)}, 0, 0},
		{"fetch", expRows, false, [][]byte{binRow, binRow, eofPkt(0x80, false)}, 0x80, -1},
		{"prepare", expPrepare, false, [][]byte{prepOK(2, 1), colPkt(), eofPkt(0, false), colPkt(), colPkt(), eofPkt(0, false)}, 0, -1},
		{"prepare, no columns", expPrepare, false, [][]byte{prepOK(0, 2), colPkt(), colPkt(), eofPkt(0, false)}, 0, -1},
		{"prepare, deprecate EOF", expPrepare, true, [][]byte{prepOK(1, 2), colPkt(), colPkt(), colPkt()}, 0, -1},
		{"prepare, nothing", expPrepare, true, [][]byte{prepOK(0, 0)}, 0, -1},
		{"prepare ERR", expPrepare, false, [][]byte{errPkt()}, 0, -1},
		{"field list", expFields, false, [][]byte{colPkt(), colPkt(), eofPkt(0, false)}, 0, -1},
		{"ping", expOne, false, [][]byte{okPkt(inTrans)}, inTrans, -1},
		{"set option (EOF)", expOne, false, [][]byte{eofPkt(2, false)}, 2, -1},
		{"statistics", expOne, false, [][]byte{[]byte("Uptime: 5  Threads: 1")}, 0, -1},
	}
	for _, c := range cases {
		r := response{phase: startPhase(c.kind)}
		var status uint16
		for i, p := range c.pkts {
			v, st, ok := r.next(p, len(p), c.dep)
			if ok {
				status = st
			}
			want := pktMore
			switch {
			case i == c.infile:
				want = pktInfile
			case i == len(c.pkts)-1:
				want = pktDone
			}
			if v != want {
				t.Fatalf("%s: packet %d (%x): verdict %d, want %d", c.name, i, p, v, want)
			}
		}
		if status != c.status {
			t.Errorf("%s: status %#x, want %#x", c.name, status, c.status)
		}
	}
	// A text row whose first value is 16 MiB or more starts with 0xfe and
	// fills a whole packet: it is a row, not the end.
	big := append([]byte{lenencEight}, make([]byte, 16)...)
	if isEnd(big, maxPacketPayload) || !isEnd(eofPkt(0, true), 7) {
		t.Fatal("isEnd")
	}
}

// TestAnnotatePermissionError: a permission error from the upstream gets
// the reason in the guide's words: the scope the token lacks, or, when it
// holds it, that the user reaches only HeliosDB's (test) databases; other
// errors are left alone, and the sequence id is kept.
func TestAnnotatePermissionError(t *testing.T) {
	denied := func(code uint16, msg string) []byte { return AppendERR(nil, 3, code, "42000", msg) }
	cases := []struct {
		role upstream.Role
		pkt  []byte
		want string // "" when nil is expected
	}{
		{upstream.Read, denied(1142, "INSERT command denied to user 'helios_read'@'localhost' for table `main`.`t`"),
			"(Token does not have required scope: database:write)"},
		{upstream.Write, denied(1142, "CREATE command denied to user 'helios_write'@'localhost' for table `main`.`t2`"),
			"(Token does not have required scope: schema:write)"},
		{upstream.Read, denied(1142, "SELECT command denied to user 'helios_read'@'localhost' for table `mysql`.`user`"),
			"(HeliosDB reaches only its registered databases (POST /v1/databases))"},
		{upstream.Test | upstream.Owner, denied(1142, "SELECT command denied to user 'helios_test_owner'@'localhost' for table `main`.`t`"),
			"(Test tokens can only access test databases)"},
		{upstream.Test | upstream.Read, denied(1142, "DELETE command denied to user 'helios_test_read'@'localhost' for table `t`.`t`"),
			"(Token does not have required scope: database:write)"},
		{upstream.Read, denied(1370, "execute command denied to user 'helios_read'@'%' for routine 'main.p'"),
			"(Token does not have required scope: database:write)"},
		{upstream.Test | upstream.Read, denied(1044, "Access denied for user 'helios_test_read'@'%' to database 'main'"),
			"(Test tokens can only access test databases)"},
		{upstream.Owner, denied(1227, "Access denied; you need (at least one of) the SUPER privilege(s) for this operation"),
			"(the HeliosDB users hold no server-wide privilege)"},
		{upstream.Read, denied(1146, "Table 'main.x' doesn't exist"), ""},
		{upstream.Owner, denied(1142, "INSERT command denied"), "(HeliosDB reaches only"},
	}
	for _, c := range cases {
		got := annotatePermissionError(c.pkt, c.role)
		if c.want == "" {
			if got != nil {
				t.Errorf("%q annotated: %q", c.pkt, got)
			}
			continue
		}
		payload, seq, n, err := ReadPacket(got, 1<<20)
		if err != nil || n != len(got) || seq != 3 {
			t.Fatalf("%q: not one packet with sequence id 3: %v", got, err)
		}
		msg := string(payload[9:])
		if !strings.HasPrefix(msg, string(c.pkt[packetHeaderLen+9:])+" ") || !strings.Contains(msg, c.want) ||
			string(payload[:9]) != string(c.pkt[packetHeaderLen:packetHeaderLen+9]) {
			t.Errorf("%s → %q, want the original with %q", c.pkt[packetHeaderLen+9:], msg, c.want)
		}
	}
}

// TestGrantTarget: _ and % in a database name are wildcards in GRANT:
// escaped, so that the grant names that database alone.
func TestGrantTarget(t *testing.T) {
	for in, want := range map[string]string{
		"main":      "`main`.*",
		"my_test":   "`my\\_test`.*",
		"a%b":       "`a\\%b`.*",
		"we`ird\\x": "`we``ird\\\\x`.*",
	} {
		if got := grantTarget(in); got != want {
			t.Errorf("grantTarget(%q) = %s, want %s", in, got, want)
		}
	}
	if got := quoteString(`it's \ ok`); got != `'it''s \\ ok'` {
		t.Errorf("quoteString: %s", got)
	}
}

// TestVariant: clients share server connections only with the same format
// flags and collation; other flags do not split the pool.
func TestVariant(t *testing.T) {
	base := variant(ClientProtocol41|ClientDeprecateEOF, 45)
	if variant(ClientProtocol41|ClientDeprecateEOF|ClientConnectAttrs|ClientSSL, 45) != base {
		t.Fatal("a flag that does not change the format split the pool")
	}
	for _, v := range []uint64{variant(ClientProtocol41, 45), variant(ClientProtocol41|ClientDeprecateEOF, 33),
		variant(ClientProtocol41|ClientDeprecateEOF|ClientMultiStatements, 45)} {
		if v == base {
			t.Fatalf("variant %#x shared with %#x", v, base)
		}
	}
	if uint32(base)&^formatCaps != 0 || byte(base>>32) != 45 {
		t.Fatalf("variant %#x does not decode", base)
	}
}
