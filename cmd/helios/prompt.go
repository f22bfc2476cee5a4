package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// stdinIsTerminal reports whether standard input is a terminal.
func stdinIsTerminal() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// askCredentials returns the email and password: the email from --email or
// a prompt; the password from a hidden prompt on a terminal, otherwise from
// standard input (with --email, stdin holds only the password; without it,
// the email on the first line and the password on the second).
func (a *app) askCredentials(email string, confirm bool) (string, string, error) {
	if a.interactive() {
		r := bufio.NewReader(a.stdin)
		if email == "" {
			fmt.Fprint(a.stderr, "Email: ")
			line, err := r.ReadString('\n')
			if err != nil && line == "" {
				return "", "", errors.New("no email given")
			}
			email = strings.TrimSpace(line)
		}
		pw, err := readHidden(a.stderr, "Password: ")
		if err != nil {
			return "", "", err
		}
		if confirm {
			again, err := readHidden(a.stderr, "Repeat password: ")
			if err != nil {
				return "", "", err
			}
			if again != pw {
				return "", "", errors.New("the passwords do not match")
			}
		}
		return email, pw, nil
	}
	lines, err := readLines(a.stdin, 2)
	if err != nil {
		return "", "", err
	}
	if email == "" {
		if len(lines) < 2 {
			return "", "", errors.New("not a terminal: pass --email and the password on stdin, or the email and password on two lines of stdin")
		}
		return strings.TrimSpace(lines[0]), lines[1], nil
	}
	if len(lines) < 1 || lines[0] == "" {
		return "", "", errors.New("not a terminal: send the password on stdin (e.g. --email you@example.com < password-file)")
	}
	return email, lines[0], nil
}

// readHidden prompts on w and reads a line from the terminal without echo.
func readHidden(w io.Writer, prompt string) (string, error) {
	fmt.Fprint(w, prompt)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// readLines reads up to n lines (without their line endings) from r, one
// byte at a time so that nothing past the n-th line is consumed: commands
// chained in a script (signup && login) read their lines from one stdin.
func readLines(r io.Reader, n int) ([]string, error) {
	var lines []string
	var line []byte
	var b [1]byte
	for total := 0; len(lines) < n && total < 64<<10; total++ {
		k, err := r.Read(b[:])
		if k == 1 {
			if b[0] == '\n' {
				lines = append(lines, strings.TrimRight(string(line), "\r"))
				line = line[:0]
			} else {
				line = append(line, b[0])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return lines, err
		}
	}
	if len(line) > 0 && len(lines) < n {
		lines = append(lines, strings.TrimRight(string(line), "\r"))
	}
	return lines, nil
}
