package kube

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Connection is a new TCP connection the node's netfilter tracked
// (conntrack's NEW event), as the conntrack logger of a [DataPlane] saw it.
type Connection struct {
	At time.Time // when the node tracked it: its first packet
	// Src and Dst are the original direction: the client and the address
	// it dialed (a ClusterIP, or a pod's IP dialed directly).
	Src, Dst string
	DstPort  int
	// Backend is where the node sent it: the reply's source, a pod's IP
	// once kube-proxy's DNAT has chosen an endpoint for a ClusterIP.
	Backend string
}

// "[1796525834.466928]	    [NEW] tcp      6 120 SYN_SENT src=A dst=B sport=P dport=Q [UNREPLIED] src=C dst=D sport=R dport=S"
var conntrackLine = regexp.MustCompile(`^\[(\d+)\.(\d{6})\]\s+\[NEW\] tcp\s+\d+ \d+ \S+ src=(\S+) dst=(\S+) sport=\d+ dport=(\d+) (?:\[UNREPLIED\] )?src=(\S+) `)

// Connections parses the log of the node's conntrack events: the new TCP
// connections the node has tracked since kube-proxy started, in order. It
// returns an error if events were dropped (the kernel's ENOBUFS: the
// logger fell behind).
func (d *DataPlane) Connections() ([]Connection, error) {
	if d.Conntrack == nil {
		return nil, nil
	}
	f, err := os.Open(d.Conntrack.Log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		conns   []Connection
		dropped bool
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		m := conntrackLine.FindStringSubmatch(line)
		if m == nil {
			if strings.Contains(line, "ENOBUFS") {
				dropped = true
			}
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		usec, _ := strconv.ParseInt(m[2], 10, 64)
		port, _ := strconv.Atoi(m[5])
		conns = append(conns, Connection{At: time.Unix(sec, usec*1000), Src: m[3], Dst: m[4], DstPort: port, Backend: m[6]})
	}
	if err := sc.Err(); err != nil {
		return conns, err
	}
	if dropped {
		return conns, fmt.Errorf("conntrack events dropped (ENOBUFS): see %s", d.Conntrack.Log)
	}
	return conns, nil
}
