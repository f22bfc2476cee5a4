// Command helios is the HeliosDB command-line client: it signs up, logs in,
// keeps the session token in the user's config directory (mode 0600), and
// creates, lists and revokes tokens through the issuer's /v1/auth REST API,
// exactly as the authentication guide shows.
//
// The server decides whether a token is valid; the CLI reports the
// server's code and message and exits non-zero on any error. It reads a
// token's public fields (type, id, expiry, scopes: core.DecodeUnverified,
// no key) only to show them and to refresh the saved token before it
// expires: in the last quarter of its lifetime, any command that uses it
// replaces it with its successor (POST /v1/auth/refresh) and says so. It
// prints a token only when asked to (auth token, token create) and never
// logs one.
//
// `helios bench` load-tests the gateway with the real client library of
// each protocol, side by side with other servers; its engine is package
// bench/load.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heliosdb/auth/internal/buildinfo"
)

// defaultAPIURL is where `make run` serves the API.
const defaultAPIURL = "http://127.0.0.1:8080"

// app is the state shared by every command: global flags and streams.
type app struct {
	apiURL string
	caCert string
	output string

	stdin          io.Reader
	stdout, stderr io.Writer
	// interactive reports whether stdin is a terminal (prompts allowed).
	interactive func() bool
}

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, interactive: stdinIsTerminal}
	if err := a.root().Execute(); err != nil {
		a.printError(err)
		var ec *exitCode
		if errors.As(err, &ec) {
			os.Exit(ec.code)
		}
		os.Exit(1)
	}
}

// root builds the command tree.
func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "helios",
		Short: "HeliosDB command-line client: accounts, tokens and load tests",
		Long: "helios signs you up, logs you in and manages your HeliosDB tokens; helios bench load-tests the gateway.\n\n" +
			"One token authenticates every protocol: REST, PostgreSQL, MySQL, MongoDB and Redis.\n" +
			"  export HELIOS_TOKEN=$(helios auth token)",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "text" && a.output != "json" {
				return usageError("--output must be text or json, not " + a.output)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.apiURL, "api-url", "", "HeliosDB API URL (env HELIOS_API_URL; default "+defaultAPIURL+")")
	pf.StringVar(&a.caCert, "ca-cert", "", "PEM file of a CA to trust for https, e.g. heliosd's self-signed tls-cert.pem (env HELIOS_CA_CERT)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json (json prints the API's response as is)")
	root.Version = buildinfo.Version()
	root.SetVersionTemplate("helios {{.Version}}\n")
	for _, group := range []*cobra.Command{a.authCommand(), a.tokenCommand()} {
		group.RunE = unknownSubcommand
		root.AddCommand(group)
	}
	root.AddCommand(a.benchCommand())
	return root
}

// unknownSubcommand is the RunE of a command group: bare, it prints the
// group's help; with an argument, that argument names no subcommand, which
// is an error (cobra would print the help and exit 0).
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError(msg + "\nRun '" + cmd.CommandPath() + " --help' for its commands.")
}

// usageError is a mistake on the command line.
type usageError string

// Error returns the mistake as the user should read it.
func (e usageError) Error() string { return string(e) }

// hinted is an error with the hint that fits the state it was met in,
// replacing the table's hint for its code.
type hinted struct {
	err  error
	hint string
}

// Error returns the wrapped error's text.
func (h *hinted) Error() string { return h.err.Error() }

// Unwrap returns the wrapped error.
func (h *hinted) Unwrap() error { return h.err }

// restToCLI rewrites the REST endpoints a server message names into the
// helios commands that call them: the CLI's user types commands, not
// requests. Longer endpoints come first (logout-all before logout).
var restToCLI = strings.NewReplacer(
	"POST /v1/auth/signup", "helios auth signup",
	"POST /v1/auth/login", "helios auth login",
	"POST /v1/auth/logout-all", "helios auth logout --all",
	"POST /v1/auth/logout", "helios auth logout",
	"POST /v1/auth/refresh", "helios auth refresh",
	"GET /v1/auth/tokens", "helios token list",
	"POST /v1/auth/tokens", "helios token create",
	"DELETE /v1/auth/tokens", "helios token revoke",
)

// printError writes err for the user: an API error as its code and message
// (with what to do next, naming a helios command that can succeed in the
// state the error reports), anything else as is.
func (a *app) printError(err error) {
	hint := ""
	var h *hinted
	if errors.As(err, &h) {
		hint = h.hint
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		fmt.Fprintln(a.stderr, "Error:", err)
		if hint != "" {
			fmt.Fprintln(a.stderr, "Hint: "+hint)
		}
		return
	}
	fmt.Fprintf(a.stderr, "Error: %s: %s\n", ae.Code, restToCLI.Replace(ae.Message))
	if hint == "" {
		hint = apiHint(ae)
	}
	if hint != "" {
		fmt.Fprintln(a.stderr, "Hint: "+hint)
	}
}

// apiHint is what to do after an API error, by code.
func apiHint(ae *apiError) string {
	env := os.Getenv("HELIOS_TOKEN") != ""
	switch ae.Code {
	case "AUTH_REQUIRED":
		if env {
			return "HELIOS_TOKEN holds a token the server refuses: unset it to use the token saved by helios auth login, or set it to a valid one."
		}
		return "log in again: helios auth login."
	case "AUTH_EXPIRED":
		if env {
			return "HELIOS_TOKEN holds an expired token: log in again (helios auth login), then export HELIOS_TOKEN=$(helios auth token), or unset HELIOS_TOKEN."
		}
		return "the token expired: log in again: helios auth login."
	case "EMAIL_TAKEN":
		return "log in with it: helios auth login."
	case "INVALID_CREDENTIALS":
		return "check the email and password; no account yet? helios auth signup."
	case "ALREADY_REFRESHED", "TOKEN_NOT_FOUND":
		if ae.Code == "TOKEN_NOT_FOUND" && !strings.Contains(ae.Message, "log in") {
			return "see your tokens' ids and names: helios token list."
		}
		return "log in again: helios auth login."
	case "UNKNOWN_SCOPE":
		return "see the scopes: helios token create --help."
	case "FORBIDDEN":
		switch {
		case ae.Scope == "*" && env:
			// The saved token (from helios auth login) has every scope,
			// but HELIOS_TOKEN overrides it, so logging in alone would
			// not help.
			return "this needs a full-access token (scope *), and HELIOS_TOKEN holds another one: " +
				"unset HELIOS_TOKEN to use the token saved by helios auth login (log in again if you have none)."
		case ae.Scope == "*":
			return "this needs a full-access token (scope *): log in again: helios auth login."
		case ae.Scope != "":
			return "this needs scope " + ae.Scope + ": create a token that holds it (helios token create --name NAME --scopes " + ae.Scope + ") and use it."
		}
		return "create a token with the scope it needs (helios token create --scopes …) and use it."
	case "RATE_LIMITED":
		return "wait a minute and try again."
	case "STORAGE_FULL":
		return "the server's disk is full; tokens you already have keep working. Retry once its operator frees space."
	case "STORAGE_FAILED":
		return "the server's storage failed; tokens you already have keep working. Its operator must restart heliosd."
	}
	return ""
}
