package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Limits on reading a secret: one line of at most maxSecret octets, from a
// command that may run for at most secretTimeout.
const (
	maxSecret     = 4096
	secretTimeout = 2 * time.Minute
)

// secretKind says where a password comes from. A password is never taken
// from the command line, where other users of the machine can read it.
type secretKind int

const (
	secretNone   secretKind = iota
	secretConfig            // the password line of a configuration file
	secretEval              // the first line a command prints (passwordeval)
	secretFile              // the first line of a file (--password-file)
	secretEnv               // an environment variable (--password-env)
)

// secret is a password (or OAuth token) and where to get it. It is read only
// when it is needed, and never printed.
type secret struct {
	kind  secretKind
	value string // the password, command, file name or variable name
	where string // the configuration file, for messages
}

// String describes where the secret comes from, never what it is.
func (s secret) String() string {
	switch s.kind {
	case secretConfig:
		return "the password line of " + s.where
	case secretEval:
		return "the output of passwordeval"
	case secretFile:
		return "the file " + s.value
	case secretEnv:
		return "the environment variable " + s.value
	}
	return "none"
}

// read returns the secret. getenv reads the environment; a passwordeval
// command's standard error goes to stderr.
func (s secret) read(ctx context.Context, getenv func(string) string, stderr io.Writer) (string, error) {
	switch s.kind {
	case secretConfig:
		return s.value, nil
	case secretEval:
		return runPasswordEval(ctx, s.value, stderr)
	case secretFile:
		f, err := os.Open(expandTilde(s.value))
		if err != nil {
			return "", configError("reading the password file: %v", err)
		}
		defer f.Close()
		line, err := firstLine(f)
		if err != nil {
			return "", configError("reading the password file %s: %v", s.value, err)
		}
		return line, nil
	case secretEnv:
		v := getenv(s.value)
		if v == "" {
			return "", configError("the environment variable %s, named by --password-env, is empty or not set", s.value)
		}
		return v, nil
	}
	return "", configError("authentication needs a password: set passwordeval or password in the configuration, or pass --password-file or --password-env")
}

// runPasswordEval runs cmd with the shell, as msmtp does, and returns the
// first line it prints without the line end. Its standard error goes to
// stderr, so that a password manager's prompt or complaint is seen.
func runPasswordEval(ctx context.Context, cmd string, stderr io.Writer) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, secretTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Stderr = stderr
	out, err := c.StdoutPipe()
	if err != nil {
		return "", configError("passwordeval: %v", err)
	}
	if err := c.Start(); err != nil {
		return "", configError("passwordeval: cannot run the command: %v", err)
	}
	line, rerr := firstLine(out)
	io.Copy(io.Discard, io.LimitReader(out, 1<<20)) // let the command finish writing
	werr := c.Wait()
	if ctx.Err() != nil {
		return "", configError("passwordeval: the command did not finish within %v", secretTimeout)
	}
	if werr != nil {
		return "", configError("passwordeval: the command failed: %v", werr)
	}
	if rerr != nil {
		return "", configError("passwordeval: reading what the command printed: %v", rerr)
	}
	return line, nil
}

// firstLine reads the first line of r, without its LF or CRLF, refusing one
// longer than maxSecret. An empty first line is an error.
func firstLine(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxSecret+2), maxSecret+2)
	line, err := br.ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if errors.Is(err, io.EOF) && len(line) > maxSecret {
		return "", fmt.Errorf("the first line is longer than %d octets", maxSecret)
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if len(line) == 0 {
		return "", errors.New("the first line is empty")
	}
	return strings.Clone(string(line)), nil
}
