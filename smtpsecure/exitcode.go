package main

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes of sysexits.h, which sendmail, msmtp and the programs that
// call them use: 75 means "try again later", the other non-zero codes mean
// that trying again will not help.
const (
	exitOK          = 0
	exitUsage       = 64 // EX_USAGE: bad command line
	exitDataErr     = 65 // EX_DATAERR: the message or an address is wrong
	exitNoInput     = 66 // EX_NOINPUT: an input file cannot be read
	exitNoUser      = 67 // EX_NOUSER: the recipient was refused
	exitNoHost      = 68 // EX_NOHOST: the host or domain does not exist
	exitUnavailable = 69 // EX_UNAVAILABLE: refused permanently
	exitSoftware    = 70 // EX_SOFTWARE: an internal error
	exitIOErr       = 74 // EX_IOERR: reading or writing failed
	exitTempFail    = 75 // EX_TEMPFAIL: try again later
	exitProtocol    = 76 // EX_PROTOCOL: the server broke the protocol
	exitNoPerm      = 77 // EX_NOPERM: a secure session could not be had, or AUTH failed
	exitConfig      = 78 // EX_CONFIG: the configuration is wrong
)

// exitError is an error that carries the exit code the command ends with.
type exitError struct {
	Code int
	Err  error
}

// Error returns the cause's message.
func (e *exitError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *exitError) Unwrap() error { return e.Err }

// withCode attaches an exit code to err.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{Code: code, Err: err}
}

// codef is withCode with a formatted message.
func codef(code int, format string, args ...any) error {
	return &exitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// usageError is a mistake on the command line.
func usageError(format string, args ...any) error {
	return codef(exitUsage, format, args...)
}

// configError is a mistake in the configuration.
func configError(format string, args ...any) error {
	return codef(exitConfig, format, args...)
}

// exitCode returns the exit code for err: the one attached with withCode,
// or the one classify gives for the library's errors, EX_TEMPFAIL for a
// cancelled command, and EX_SOFTWARE for anything unknown.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if errors.Is(err, errConfigSyntax) {
		return exitConfig
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return exitTempFail
	}
	if code, ok := classify(err); ok {
		return code
	}
	return exitSoftware
}
