package httpmod

// The default bound on the public connections ([Config.MaxConns]): the
// open-file limit less a reserve for the admin server and the process's
// other descriptors (log files, a database pool, gRPC clients, the runtime's
// own).
const (
	fdReserveMin      = 64 // descriptors kept at least
	fdReserveFraction = 10 // and at least 1/10 of the limit
)

// resolveMaxConns turns a configured bound into the one applied: 0 is the
// default, derived from the open-file limit; negative is none (0 here).
func resolveMaxConns(n int) int {
	switch {
	case n > 0:
		return n
	case n < 0:
		return 0
	}
	limit, ok := openFileLimit()
	if !ok {
		return 0
	}
	return maxConnsFor(limit)
}

// maxConnsFor is the default bound for an open-file limit.
func maxConnsFor(limit uint64) int {
	const most = 1 << 30 // beyond it, the limit bounds nothing in practice
	if limit >= most {
		return 0
	}
	reserve := max(fdReserveMin, limit/fdReserveFraction)
	n := max(int64(limit)-int64(reserve), int64(limit/2))
	return int(max(n, 1))
}
