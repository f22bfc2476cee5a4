package main

import "errors"

// errShowVersion is loadConfig's answer to --version: run prints the
// version and exits 0.
var errShowVersion = errors.New("version requested")
