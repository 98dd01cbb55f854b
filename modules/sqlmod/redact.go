package sqlmod

import (
	"regexp"
	"strings"
)

const masked = "xxxxx"

var (
	// A URL's scheme and the slashes after it: "postgres://", "file:".
	urlPrefix = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:/*`)
	// A password (or sslpassword) query parameter: its value runs to the
	// next '&', whatever it holds ('#', '@', ';' included).
	queryPassword = regexp.MustCompile(`(?i)([?&;](?:ssl)?password=)[^&]*`)
	// A keyword/value password, bare or single-quoted (libpq syntax); an
	// unterminated quote runs to the end.
	kvPassword = regexp.MustCompile(`(?i)\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*(?:'|$)|\S+)`)
)

// RedactDSN returns dsn fit for logs and errors, with every place a
// password may hold replaced by "xxxxx":
//
//   - in a URL (scheme:…), everything from the first ':' after the scheme's
//     slashes to the last '@' — so a password that holds '/', '?', '#', '@'
//     or a bad %-escape, which a URL parser would read as a host, a path or
//     a query, is masked whole — and the values of password and sslpassword
//     query parameters;
//   - in keyword/value form, the values of password and sslpassword.
//
// It parses nothing, so it cannot fail: what cannot be told apart is
// masked. A URL with no '@' has no user info, and keeps its host and path.
func RedactDSN(dsn string) string {
	loc := urlPrefix.FindStringIndex(dsn)
	if loc == nil {
		return kvPassword.ReplaceAllString(dsn, "${1}"+masked)
	}
	prefix, rest := dsn[:loc[1]], dsn[loc[1]:]
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if colon := strings.Index(rest[:at], ":"); colon >= 0 {
			rest = rest[:colon+1] + masked + rest[at:]
		}
	}
	return queryPassword.ReplaceAllString(prefix+rest, "${1}"+masked)
}
