package main

import (
	"errors"
	"io"
	"testing"
)

func TestConfigVersionFlag(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--data-dir", "/x", "--version"}} {
		if _, err := loadConfig(args, none, io.Discard); !errors.Is(err, errShowVersion) {
			t.Errorf("%q: %v, want errShowVersion", args, err)
		}
	}
}
