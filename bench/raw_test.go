package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawServerEnv makes the test binary run the raw-TCP ceiling server (a
// subprocess, so that it competes for the CPU as heliosd does).
const rawServerEnv = "HELIOS_BENCH_RAW_SERVER"

// runRawServer accepts connections, reads 4 bytes, writes 4 bytes and
// closes, one goroutine per connection; it prints its address and runs
// until its stdin closes.
func runRawServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			var b [4]byte
			if _, err := io.ReadFull(c, b[:]); err == nil {
				_, _ = c.Write([]byte("pong"))
			}
			c.Close()
		}(c)
	}
}

var (
	rawOnce sync.Once
	rawAddr string
	rawErr  error
)

func rawServer(tb testing.TB) string {
	rawOnce.Do(func() {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), rawServerEnv+"=1")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if rawErr = cmd.Start(); rawErr != nil {
			return
		}
		atStop(func() {
			stdin.Close()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || strings.HasPrefix(line, "ERR") {
			rawErr = fmt.Errorf("raw server: %q %v", line, err)
			return
		}
		rawAddr = strings.TrimSpace(line)
	})
	if rawErr != nil {
		tb.Fatal(rawErr)
	}
	return rawAddr
}

// rawTarget is the ceiling: connect, write 4 bytes, read 4 bytes, close.
var rawTarget = Target{
	Name:   "raw-tcp",
	Server: rawServer,
	Handshake: func(addr, _ string) error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer closeNow(c)
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		var b [4]byte
		return readFull(c, b[:])
	},
}
