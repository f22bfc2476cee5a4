package mysql

// The proxy pump: server-to-client forwarding and response-structure tracking.

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
)

// Response phases (the pump's parser).
const (
	phStart       uint8 = iota // a result: OK, ERR, LOCAL INFILE or a column count
	phColumns                  // column definitions (n left)
	phColumnsEOF               // the EOF after them
	phRows                     // rows up to EOF/OK or ERR
	phPrepare                  // COM_STMT_PREPARE_OK or ERR
	phParams                   // parameter definitions (n left, then m columns)
	phParamsEOF                // the EOF after them
	phPrepCols                 // column definitions of a prepared statement (n left)
	phPrepColsEOF              // the EOF after them
	phOne                      // a single packet
	phFields                   // COM_FIELD_LIST definitions up to EOF
)

// response follows one response's packets.
type response struct {
	phase uint8
	n, m  int
}

// startPhase is the first phase of a response of kind k.
func startPhase(k expect) uint8 {
	switch k {
	case expPrepare:
		return phPrepare
	case expOne:
		return phOne
	case expRows:
		return phRows
	case expFields:
		return phFields
	}
	return phStart
}

// Verdicts of response.next on one packet.
const (
	pktMore   = iota // the response goes on
	pktDone          // the response ended with this packet
	pktInfile        // a LOCAL INFILE request: the client's file comes next
)

// isEnd reports whether p, in a phase where rows or definitions are
// expected, is the EOF (or OK with the EOF header) that ends them: a row or
// definition starting with 0xfe fills a packet of 16 MiB - 1.
func isEnd(p []byte, size int) bool { return p[0] == headerEOF && size < maxPacketPayload }

// endStatus reads the status flags of an EOF, or of an OK with the EOF
// header when deprecateEOF.
func endStatus(p []byte, deprecateEOF bool) (uint16, bool) {
	if deprecateEOF {
		_, st, ok := okStatus(p)
		return st, ok
	}
	if len(p) < 5 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(p[3:]), true
}

// next advances r over one packet (p: its payload, size > 0 and not a
// continuation fragment); status is set when the packet carried status
// flags.
func (r *response) next(p []byte, size int, deprecateEOF bool) (verdict int, status uint16, hasStatus bool) {
	if size == 0 {
		return pktDone, 0, false // nothing a server sends; ends the response to stay in step
	}
	switch r.phase {
	case phStart:
		switch p[0] {
		case headerOK:
			st, ok := statusOf(okStatus(p))
			if ok && st&serverMoreResultsExist != 0 {
				return pktMore, st, true
			}
			return pktDone, st, ok
		case headerERR:
			return pktDone, 0, false
		case localInfileRequest:
			return pktInfile, 0, false
		}
		n, _, ok := readLenenc(p)
		if !ok || n == 0 {
			return pktDone, 0, false
		}
		r.phase, r.n = phColumns, int(min(n, 1<<16))
		return pktMore, 0, false
	case phColumns, phPrepCols, phParams:
		r.n--
		if r.n > 0 {
			return pktMore, 0, false
		}
		switch {
		case !deprecateEOF:
			r.phase++ // the EOF after them
		case r.phase == phColumns:
			r.phase = phRows
		case r.phase == phParams && r.m > 0:
			r.phase, r.n = phPrepCols, r.m
		default:
			return pktDone, 0, false
		}
		return pktMore, 0, false
	case phColumnsEOF:
		st, ok := endStatus(p, false)
		if ok && st&serverStatusCursorExists != 0 {
			return pktDone, st, true // a cursor: rows come with COM_STMT_FETCH
		}
		r.phase = phRows
		return pktMore, st, ok
	case phRows:
		if p[0] == headerERR {
			return pktDone, 0, false
		}
		if !isEnd(p, size) {
			return pktMore, 0, false
		}
		st, ok := endStatus(p, deprecateEOF)
		if ok && st&serverMoreResultsExist != 0 {
			r.phase = phStart
			return pktMore, st, true
		}
		return pktDone, st, ok
	case phPrepare:
		if p[0] != headerOK || len(p) < 9 {
			return pktDone, 0, false
		}
		cols, params := int(binary.LittleEndian.Uint16(p[5:])), int(binary.LittleEndian.Uint16(p[7:]))
		switch {
		case params > 0:
			r.phase, r.n, r.m = phParams, params, cols
		case cols > 0:
			r.phase, r.n = phPrepCols, cols
		default:
			return pktDone, 0, false
		}
		return pktMore, 0, false
	case phParamsEOF:
		if r.m > 0 {
			r.phase, r.n = phPrepCols, r.m
			return pktMore, 0, false
		}
		return pktDone, 0, false
	case phPrepColsEOF:
		return pktDone, 0, false
	case phFields:
		if p[0] == headerERR {
			return pktDone, 0, false
		}
		if isEnd(p, size) {
			st, ok := endStatus(p, deprecateEOF)
			return pktDone, st, ok
		}
		return pktMore, 0, false
	}
	// phOne
	switch p[0] {
	case headerOK:
		st, ok := statusOf(okStatus(p))
		return pktDone, st, ok
	case headerEOF:
		st, ok := endStatus(p, deprecateEOF)
		return pktDone, st, ok
	}
	return pktDone, 0, false
}

func statusOf(_ uint64, st uint16, ok bool) (uint16, bool) { return st, ok }

// Pump buffer sizes: it reads into 64 KiB and grows only for a larger
// packet (at most 16 MiB + 4), shrinking back once that has passed.
const (
	pumpBuffer    = 64 << 10
	pumpBufferMax = 256 << 10
)

// pumpBuffers recycles the pumps' buffers (a session that connects,
// queries once and leaves would otherwise allocate 64 KiB each time).
var pumpBuffers = sync.Pool{New: func() any { b := make([]byte, 0, pumpBuffer); return &b }}

// pump forwards the server's packets to the client, whole, until the
// server connection fails or is stopped (a read deadline in the past).
func (px *proxy) pump(client io.Writer) {
	defer close(px.done)
	bp := pumpBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		if cap(buf) == pumpBuffer {
			*bp = buf[:0]
			pumpBuffers.Put(bp)
		}
	}()
	var r response
	active := false
	var respSeq byte // sequence id of the last packet of the current response
	cont := false    // the last packet was a 16 MiB - 1 fragment: the next continues it
	for {
		n, rerr := px.sc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		px.mu.Lock()
		revoked := px.revoked
		px.mu.Unlock()
		write := func(b []byte) bool {
			if len(b) == 0 || revoked {
				return true
			}
			_, err := client.Write(b)
			return err == nil
		}
		i, start, ended := 0, 0, 0
		var status uint16
		hasStatus, refusedLoad := false, false
		for len(buf)-i >= packetHeaderLen {
			size := int(buf[i]) | int(buf[i+1])<<8 | int(buf[i+2])<<16
			end := i + packetHeaderLen + size
			if end > len(buf) {
				break
			}
			seq, p := buf[i+3], buf[i+packetHeaderLen:end]
			fragment := cont
			cont = size == maxPacketPayload
			if !active && !fragment {
				px.mu.Lock()
				if ended < len(px.pending) {
					active, r = true, response{phase: startPhase(px.pending[ended].kind)}
				}
				px.mu.Unlock()
			}
			respSeq = seq
			if !active || fragment {
				// An unsolicited packet (an ERR before the server closes)
				// or the rest of a large one: forwarded as it is.
				i = end
				continue
			}
			verdict, st, ok := r.next(p, size, px.deprecateEOF)
			if ok {
				status, hasStatus = st, true
			}
			switch verdict {
			case pktInfile:
				if !px.mayLoad {
					// The classifier let a LOAD DATA LOCAL through for a
					// token without database:write: the file is never
					// read. The server side cannot be brought back in step
					// cheaply; it is dropped, and the client told why.
					if !write(buf[start:i]) || !write(appendLoadRefused(nil, seq)) {
						px.kill()
						return
					}
					refusedLoad = true
				} else {
					px.mu.Lock()
					px.infile = true // before the client can see the request
					px.mu.Unlock()
				}
			case pktDone:
				ended++
				active = false
			}
			if refusedLoad {
				break
			}
			if size > 0 && p[0] == headerERR {
				if a := annotatePermissionError(buf[i:end], px.key.Role); a != nil {
					if !write(buf[start:i]) || !write(a) {
						px.kill()
						return
					}
					start = end
				}
			}
			i = end
		}
		if !refusedLoad && !write(buf[start:i]) {
			px.kill()
			return
		}
		px.mu.Lock()
		if ended > 0 {
			px.pending = px.pending[:copy(px.pending, px.pending[min(ended, len(px.pending)):])]
		}
		if hasStatus {
			px.status = status
		}
		if active {
			px.lastSeq = respSeq
		} else if len(px.pending) > 0 {
			px.lastSeq = px.pending[0].seq
		}
		if refusedLoad {
			px.dead, px.told = true, true
		}
		px.cond.Broadcast()
		px.mu.Unlock()
		if refusedLoad {
			return
		}
		buf = buf[:copy(buf, buf[i:])]
		if len(buf) >= packetHeaderLen {
			size := int(buf[0]) | int(buf[1])<<8 | int(buf[2])<<16
			if need := packetHeaderLen + size; need > cap(buf) {
				buf = append(make([]byte, 0, need), buf...)
			}
		} else if cap(buf) > pumpBufferMax {
			buf = append(make([]byte, 0, pumpBuffer), buf...)
		}
		if rerr != nil {
			px.lost(client, rerr)
			return
		}
	}
}

// lost ends the server side after the server connection failed: a client
// waiting for a response gets ERR in its place; an idle client gets it
// unsolicited, as the reply to its next command (a database/sql pool's
// connection check sees it and drops the connection before reuse).
func (px *proxy) lost(client io.Writer, rerr error) {
	var ne net.Error
	if errors.As(rerr, &ne) && ne.Timeout() {
		// kill (which marked the server side dead) or closeProxy (which
		// may still return it to the pool) stopped the pump.
		return
	}
	px.mu.Lock()
	quiet := px.stopping || px.revoked
	seq := byte(1)
	if len(px.pending) > 0 {
		seq = px.lastSeq + 1
	}
	px.mu.Unlock()
	told := false
	if !quiet {
		_, err := client.Write(appendUpstreamLost(nil, seq))
		told = err == nil
	}
	px.mu.Lock()
	px.dead, px.told = true, told
	px.cond.Broadcast()
	px.mu.Unlock()
}
