// Command helios is the HeliosDB command-line client: it signs up, logs in,
// keeps the session token in the user's config directory (mode 0600), and
// creates, lists and revokes tokens through the issuer's /v1/auth REST API,
// exactly as the authentication guide shows.
//
// helios holds no token logic of its own: the server decides, the CLI
// reports the server's code and message and exits non-zero on any error. It
// prints a token only when asked to (auth token, token create) and never
// logs one.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
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
		os.Exit(1)
	}
}

// root builds the command tree.
func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "helios",
		Short: "HeliosDB command-line client: accounts and tokens",
		Long: "helios signs you up, logs you in and manages your HeliosDB tokens.\n\n" +
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
	root.AddCommand(a.authCommand(), a.tokenCommand())
	return root
}

// usageError is a mistake on the command line.
type usageError string

// Error returns the mistake as the user should read it.
func (e usageError) Error() string { return string(e) }

// printError writes err for the user: an API error as its code and message
// (with what to do for authentication errors), anything else as is.
func (a *app) printError(err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		fmt.Fprintf(a.stderr, "Error: %s: %s\n", ae.Code, ae.Message)
		switch ae.Code {
		case "AUTH_REQUIRED":
			fmt.Fprintln(a.stderr, "Hint: check the token (helios auth status) or log in again (helios auth login).")
		case "AUTH_EXPIRED":
			fmt.Fprintln(a.stderr, "Hint: helios auth refresh, or log in again: helios auth login.")
		case "FORBIDDEN":
			switch {
			case ae.Scope == "*" && os.Getenv("HELIOS_TOKEN") != "":
				// The saved token (from helios auth login) has every scope,
				// but HELIOS_TOKEN overrides it, so logging in alone would
				// not help.
				fmt.Fprintln(a.stderr, "Hint: this needs a full-access token (scope *), and HELIOS_TOKEN holds another one: "+
					"unset HELIOS_TOKEN to use the token saved by helios auth login (log in again if you have none).")
			case ae.Scope == "*":
				fmt.Fprintln(a.stderr, "Hint: this needs a full-access token (scope *): log in again: helios auth login.")
			default:
				fmt.Fprintln(a.stderr, "Hint: create a token with the required scope, or use a full-access token.")
			}
		case "STORAGE_FULL":
			fmt.Fprintln(a.stderr, "Hint: the server's disk is full; tokens you already have keep working. Retry once its operator frees space.")
		case "STORAGE_FAILED":
			fmt.Fprintln(a.stderr, "Hint: the server's storage failed; tokens you already have keep working. Its operator must restart heliosd.")
		}
		return
	}
	fmt.Fprintln(a.stderr, "Error:", err)
}
