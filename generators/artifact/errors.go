package artifact

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is a generator's error about one field of the stack. The
// build positions it at that field (file:line:col and the field path,
// also in vet --output json), as it does schema errors, instead of
// leaving the path in the message for the reader to find.
type FieldError struct {
	Path string // the field, as schema.Stack.At takes it ("tls.terminate", "app.static[1].url")
	Err  error
}

// Errorf is a FieldError about the field at path.
func Errorf(path, format string, args ...any) error {
	return &FieldError{Path: path, Err: fmt.Errorf(format, args...)}
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// AsFieldError finds a FieldError in err's chain.
func AsFieldError(err error) (*FieldError, bool) {
	var fe *FieldError
	ok := errors.As(err, &fe)
	return fe, ok
}

// InHost puts a generator's error in host's context: "hosts.<host>: …",
// unless it is already about a field of that host.
func InHost(host string, err error) error {
	prefix := "hosts." + host
	if fe, ok := AsFieldError(err); ok && (fe.Path == prefix || strings.HasPrefix(fe.Path, prefix+".")) {
		return err
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
