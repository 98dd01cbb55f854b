package sqlmod

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// checkPostgresURL reads a postgres:// or postgresql:// DSN the way pgx
// does — libpq's URI grammar, which is not RFC 3986: the user info ends at
// the first '@' before any '/', hosts are a comma-separated list each with
// an optional port, and every part is percent-decoded — and returns what
// keeps it from parsing, or "". So a malformed URL fails at once, naming
// the fault, where the driver would fail only at connect time, once per
// ping, and be retried as an unreachable server. net/url is not used: it
// refuses what pgx accepts (several hosts) and reads other URLs
// differently ('?' in a password).
//
// The phrase never quotes the user info: a password, or part of one, may
// be there. It quotes a host, a port or a parameter name.
func checkPostgresURL(dsn string) string {
	scheme, rest, _ := strings.Cut(dsn, "://")
	if scheme != "postgres" && scheme != "postgresql" {
		// pgx takes anything else for keyword/value settings.
		return fmt.Sprintf("scheme %q: write it in lower case, postgres:// or postgresql://", scheme)
	}
	if strings.IndexByte(dsn, 0) >= 0 {
		return "a NUL byte"
	}
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		user, password, _ := strings.Cut(rest[:i], ":")
		if decodeURIPart(user) != "" {
			return "the user name: " + decodeURIPart(user)
		}
		if decodeURIPart(password) != "" {
			return "the password: " + decodeURIPart(password)
		}
		rest = rest[i+1:]
	}
	var ports []string
	for {
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			switch {
			case end < 0:
				return "an IPv6 host with '[' and no ']'"
			case end == 1:
				return "an empty IPv6 host, []"
			}
			rest = rest[end+1:]
			if rest != "" && !strings.ContainsRune(":/?,", rune(rest[0])) {
				return fmt.Sprintf("%q after an IPv6 host's ']': want ':', '/', '?' or ','", rest[:1])
			}
		} else {
			i := strings.IndexAny(rest, ":/?,")
			if i < 0 {
				i = len(rest)
			}
			if bad := decodeURIPart(rest[:i]); bad != "" {
				return fmt.Sprintf("host %q: %s", rest[:i], bad)
			}
			rest = rest[i:]
		}
		port := ""
		if strings.HasPrefix(rest, ":") {
			rest = rest[1:]
			i := strings.IndexAny(rest, "/?,")
			if i < 0 {
				i = len(rest)
			}
			port, rest = rest[:i], rest[i:]
		}
		ports = append(ports, port)
		if !strings.HasPrefix(rest, ",") {
			break
		}
		rest = rest[1:]
	}
	if strings.HasPrefix(rest, "/") {
		db, query, _ := strings.Cut(rest[1:], "?")
		if bad := decodeURIPart(db); bad != "" {
			return fmt.Sprintf("database name %q: %s", db, bad)
		}
		rest = "?" + query
		if query == "" {
			rest = ""
		}
	}
	if query, ok := strings.CutPrefix(rest, "?"); ok {
		for query != "" { // as pgx reads it: a trailing '&' ends the list
			var pair string
			pair, query, _ = strings.Cut(query, "&")
			key, value, found := strings.Cut(pair, "=")
			switch {
			case !found:
				return fmt.Sprintf("query parameter %q has no '='", key)
			case strings.Contains(value, "="):
				return fmt.Sprintf("query parameter %q has a second '='", key)
			}
			if bad := decodeURIPart(key); bad != "" {
				return fmt.Sprintf("query parameter %q: %s", key, bad)
			}
			name := strings.ToLower(key)
			if bad := decodeURIPart(value); bad != "" {
				if strings.Contains(name, "password") {
					return fmt.Sprintf("the value of %s: %s", key, bad)
				}
				return fmt.Sprintf("query parameter %s=%q: %s", key, value, bad)
			}
			if name == "port" {
				ports = strings.Split(value, ",")
			}
		}
	}
	for _, p := range ports {
		if p = strings.Trim(p, " "); p == "" {
			continue // the default port
		}
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return fmt.Sprintf("port %q: not a port number (1-65535)", p)
		}
	}
	return ""
}

// decodeURIPart returns what keeps s from percent-decoding as pgx (and
// libpq) decode a URI part, or "": a '%' not followed by two hex digits,
// %00, or a space inside (spaces at either end are skipped).
func decodeURIPart(s string) string {
	s = strings.Trim(s, " ")
	if strings.Contains(s, " ") {
		return "a space inside (write it %20)"
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "a '%' not followed by two hex digits (write '%' itself as %25)"
		}
		if s[i+1] == '0' && s[i+2] == '0' {
			return "%00, which no setting may hold"
		}
		i += 2
	}
	return ""
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// driverConfigError returns what the driver said of a DSN it refused to
// read — pgx's *pgconn.ParseConfigError, found in err's chain by its
// type's name, since sqlmod imports no driver — and whether err is one.
// No retry mends such an error. What pgx said is kept without the DSN it
// quotes (its own masking is best effort), and dropped if it holds any
// password of dsn.
func driverConfigError(err error, dsn string) (reason string, ok bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		t := reflect.TypeOf(e)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Name() != "ParseConfigError" || t.PkgPath() != "github.com/jackc/pgx/v5/pgconn" {
			continue
		}
		// "cannot parse `DSN`: what (why)"
		msg := e.Error()
		if _, tail, found := strings.Cut(msg, "`: "); found && strings.HasPrefix(msg, "cannot parse `") {
			msg = tail
		} else {
			msg = ""
		}
		for _, s := range dsnPasswords(dsn) {
			if strings.Contains(msg, s) {
				msg = ""
			}
		}
		return msg, true
	}
	return "", false
}

// dsnPasswords returns the passwords of a postgres:// DSN as written and
// as decoded: the user info's, and those of password and sslpassword
// query parameters.
func dsnPasswords(dsn string) []string {
	var out []string
	add := func(raw string) {
		if raw == "" {
			return
		}
		out = append(out, raw)
		if dec, err := url.PathUnescape(raw); err == nil && dec != raw && dec != "" {
			out = append(out, dec)
		}
	}
	_, rest, _ := strings.Cut(dsn, "://")
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		_, password, _ := strings.Cut(rest[:i], ":")
		add(password)
	}
	if _, query, ok := strings.Cut(rest, "?"); ok {
		for pair := range strings.SplitSeq(query, "&") {
			key, value, _ := strings.Cut(pair, "=")
			if k := strings.ToLower(key); k == "password" || k == "sslpassword" {
				add(value)
			}
		}
	}
	return out
}
