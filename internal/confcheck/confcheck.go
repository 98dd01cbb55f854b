// Package confcheck holds the checks that the drainfx Config.Validate
// methods share. A check adds a phrase naming the field at fault and its
// value ("ReadTimeout=-1s is negative") to [Problems]; each package turns
// the phrases into its own error, which matches its own sentinel
// (httpmod.ErrConfig, lifecycle.ErrBudget, …) and carries its own prefix.
package confcheck

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Problems collects what is wrong with a config: one phrase per field at
// fault, in the order checked. The zero value is empty and ready to use.
type Problems []string

// Addf adds a phrase.
func (p *Problems) Addf(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// Negative adds "name=v is negative" if v is below zero.
func (p *Problems) Negative(name string, v time.Duration) {
	if v < 0 {
		p.Addf("%s=%v is negative", name, v)
	}
}

// NegativeInt adds "name=n is negative" if n is below zero.
func (p *Problems) NegativeInt(name string, n int64) {
	if n < 0 {
		p.Addf("%s=%d is negative", name, n)
	}
}

// HostPort adds `name="addr" is not host:port` unless addr is a listen
// address host:port ([net.SplitHostPort]; the host may be empty, the port
// 0).
func (p *Problems) HostPort(name, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.Addf("%s=%q is not host:port", name, addr)
	}
}

// String joins the phrases with "; ".
func (p Problems) String() string { return strings.Join(p, "; ") }

// Error is the one config error type of drainfx: every package's Validate
// returns one, and it matches that package's sentinel (httpmod.ErrConfig,
// lifecycle.ErrBudget, …) with [errors.Is]. Its message carries the
// package's prefix and names every field at fault with its value.
type Error struct {
	sentinel error
	msg      string
}

// NewError returns an error with message msg that matches sentinel.
func NewError(sentinel error, msg string) *Error { return &Error{sentinel, msg} }

func (e *Error) Error() string { return e.msg }

// Is reports whether target is the error's sentinel.
func (e *Error) Is(target error) bool { return target == e.sentinel }

// HeaderValue returns an error if token is not empty and no HTTP header
// can carry it as written, so that it could never match: a control
// character (a newline, as `echo` without -n leaves in a Secret) makes
// net/http refuse to send it, and space or a tab at either end is trimmed
// off a header value by every HTTP parser. Such a token is refused rather
// than trimmed: the exec hook, the httpGet header in the pod spec and the
// service would each have to trim it the same way, and a secret that is
// not what was written is a surprise. The error describes the fault
// without quoting the token (the preStop token, lifecycle.Config's
// PrestopToken, is its one user).
func HeaderValue(token string) error {
	if token == "" {
		return nil
	}
	name := func(b byte) string {
		switch b {
		case ' ':
			return "a space"
		case '\t':
			return "a tab"
		case '\n':
			return "a newline"
		case '\r':
			return "a carriage return"
		}
		return fmt.Sprintf("byte %#02x", b)
	}
	// The rule of net/http (httpguts.ValidHeaderFieldValue): no control
	// byte but the tab.
	for i := 0; i < len(token); i++ {
		if b := token[i]; (b < ' ' && b != '\t') || b == 0x7f {
			where := fmt.Sprintf("at byte %d of %d", i+1, len(token))
			hint := ""
			if i == len(token)-1 {
				where = "at its end"
				if b == '\n' {
					hint = ", as `echo` without -n leaves"
				}
			}
			return fmt.Errorf("has %s %s%s: no HTTP header can carry it", name(b), where, hint)
		}
	}
	for _, end := range []struct {
		where string
		b     byte
	}{{"at its start", token[0]}, {"at its end", token[len(token)-1]}} {
		if end.b == ' ' || end.b == '\t' {
			return fmt.Errorf("has %s %s: HTTP trims it off a header value, so the token could never match", name(end.b), end.where)
		}
	}
	return nil
}
