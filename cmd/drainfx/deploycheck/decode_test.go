package deploycheck_test

import (
	"strings"
	"testing"

	"github.com/drainfx/drainfx/cmd/drainfx/deploycheck"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    string
		want    string // sources and kinds
		wantErr string
	}{
		{"several documents, empty ones and other kinds skipped",
			"---\n# Source: chart/templates/none.yaml\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
			"in#1: Secret/a in#3: ConfigMap/b", ""},
		{"one document", "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n", "in: Secret/a", ""},
		{"a bad document names itself", "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\nstringdata: {}\n",
			"in#1: Secret/a", `in#2: unknown field "stringdata"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs, err := deploycheck.Decode("in", strings.NewReader(tt.give))
			var got []string
			for _, o := range objs {
				got = append(got, o.String())
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("objects %q, want %q", got, tt.want)
			}
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
